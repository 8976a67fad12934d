"""The cluster keeper: a child process that owns a local ``ray.cluster_utils.Cluster``.

Why a process of its own: Ray starts nodes only from a main thread, installs signal and
exit handlers in the process that starts them, and a start that hangs cannot be interrupted
from inside (killing the half-started GCS makes Ray's own client wait 60 s and then abort the
process). Started from a child, a node start is bounded by killing the child, pytest's own
signal handling is left alone, and the child is the root of every process the cluster
has: they all inherit its environment, ownership token included, and its session.

Protocol: one JSON object per line on stdin, one answer per line on stdout
(``{"ok": true, ...}`` or ``{"ok": false, "error": "...", "traceback": "..."}``):

* ``{"op": "start", "head": {...}, "workers": [{...}, ...], "timeout_s": T,
  "temp_dir": D}`` starts the head and the workers (node arguments as ``Cluster.add_node``
  takes them) and answers ``{"address": ..., "nodes": [{"node_id": ..., "head": bool}]}``;
* ``{"op": "add_node", "args": {...}}`` answers ``{"node_id": ...}``;
* ``{"op": "remove_node", "node_id": ..., "graceful": bool}``;
* ``{"op": "shutdown"}`` stops every node, ends any process of the cluster still alive
  (:func:`~.reap.reap`), answers, and exits.

Aborting (:meth:`Keeper.abort`), whatever the keeper is doing (a node start included):
on ``{"op": "abort"}``, at the end of its input (the driver closed the pipe, exited or was
killed), or when its parent process is gone. The keeper then starts no more processes,
ends every process of the cluster (its token, its session) until none has been seen for a
moment (so what a half-started node was still spawning is ended too), removes the
cluster's folder (``--folder D`` on the command line, or ``temp_dir`` of the start
request) and exits.
Run as ``python -m pytest_raycallbacks.live.keeper [--folder D]``; anything Ray prints goes
to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Final, NoReturn, TextIO

from .environment import TOKEN_ENV
from .processes import Owner
from .reap import reap
from .wording import error_text, short_id

#: How often the keeper checks that its parent process is still there.
PARENT_POLL_S: Final = 0.5
#: How long an orderly shutdown waits for what the nodes leave behind to end.
LEFTOVER_REAP_S: Final = 10.0
#: How long no process of the cluster must be seen after an orderly shutdown. Short: with
#: every node stopped nothing that spawns is left (a child forked just before its raylet
#: died already carries the token and is found by the first scan); the reaper's default
#: quiet period is for an abort, where a half-started node may still be spawning.
ORDERLY_SETTLE_S: Final = 0.2


class SpawnGate:
    """Lets the keeper stop starting processes: once :meth:`close` returns, no child
    process starts any more, and one that was being started has started (so a scan sees
    it). :meth:`install` routes this process's ``subprocess`` starts (Ray's included)
    through the gate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.closed = False
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        gate = self

        def gated(popen: Any, *args: Any, **kwargs: Any) -> Any:
            with gate._lock:
                if gate.closed:
                    raise OSError("the cluster keeper is stopping: no process starts any more")
                return original(popen, *args, **kwargs)

        subprocess.Popen._execute_child = gated  # type: ignore[attr-defined]

    def close(self) -> None:
        with self._lock:
            self.closed = True


class Keeper:
    """Serves the protocol for one cluster."""

    def __init__(self, temp_dir: str | None = None) -> None:
        self.cluster: Any = None
        self.nodes: dict[str, Any] = {}
        self.temp_dir = temp_dir
        self.gate = SpawnGate()
        self._abort_lock = threading.Lock()

    def owner(self) -> Owner:
        """This keeper's cluster: the token of its environment, and its session when the
        keeper leads one (it normally does: its parent starts it in a session of its own)."""
        session = os.getpid() if os.getsid(0) == os.getpid() else None
        return Owner(os.environ.get(TOKEN_ENV, ""), session)

    def start(
        self, head: dict[str, Any], workers: list[dict[str, Any]], timeout_s: float
    ) -> dict[str, Any]:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=False, shutdown_at_exit=True)
        node = self.cluster.add_node(**head)
        self.nodes[node.node_id] = node
        for args in workers:
            worker = self.cluster.add_node(wait=False, **args)
            self.nodes[worker.node_id] = worker
        self.cluster.wait_for_nodes(timeout=timeout_s)
        return {
            "address": self.cluster.address,
            "nodes": [
                {"node_id": node_id, "head": node is self.cluster.head_node}
                for node_id, node in self.nodes.items()
            ],
        }

    def add_node(self, args: dict[str, Any]) -> dict[str, Any]:
        node = self.cluster.add_node(wait=False, **args)
        self.nodes[node.node_id] = node
        return {"node_id": node.node_id}

    def remove_node(self, node_id: str, graceful: bool) -> dict[str, Any]:
        node = self.nodes.pop(node_id)
        self.cluster.remove_node(node, allow_graceful=graceful)
        return {}

    def shutdown(self) -> dict[str, Any]:
        """Stop every node, then end what they left (agents, workers); report problems."""
        if self.cluster is None:
            return {}
        import ray

        errors = []
        for node_id, node in reversed(list(self.nodes.items())):
            try:
                self.cluster.remove_node(node, allow_graceful=True)
            except BaseException as exc:  # keep stopping the others
                errors.append(f"{short_id(node_id)}: {error_text(exc)}")
        self.nodes.clear()
        self.cluster = None
        with contextlib.suppress(Exception):
            ray._common.utils.reset_ray_address()
        left = reap(self.owner(), settle_s=ORDERLY_SETTLE_S, bound_s=LEFTOVER_REAP_S)
        if left:
            pids = ", ".join(f"{p.pid} ({p.cmdline[:60]})" for p in left)
            errors.append(f"processes that would not end: {pids}")
        return {"errors": errors}

    def abort(self, why: str) -> NoReturn:
        """End every process of the cluster and its folder, then exit (module docstring)."""
        with self._abort_lock:  # one abort at a time; the first one exits the process
            print(f"raycallbacks keeper: aborting ({why})", file=sys.stderr, flush=True)
            self.gate.close()
            left = reap(self.owner(), grace_s=0.0)
            if left:
                print(f"raycallbacks keeper: would not end: {left}", file=sys.stderr, flush=True)
            if self.temp_dir:
                shutil.rmtree(self.temp_dir, ignore_errors=True)
            os._exit(0)

    def _read(self, requests: TextIO, pending: queue.Queue[dict[str, Any]]) -> None:
        """Read requests into ``pending``; abort on ``abort`` and at the end of input."""
        with contextlib.suppress(ValueError, OSError):
            for line in requests:
                if not line.strip():
                    continue
                request = json.loads(line)
                if request.get("op") == "abort":
                    self.abort("asked to")
                pending.put(request)
        self.abort("its input was closed: the driver is gone or done")

    def _watch_parent(self) -> None:
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        self.abort(f"its parent process {parent} exited")

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "start":
            self.temp_dir = request.get("temp_dir") or self.temp_dir
            return self.start(request["head"], request["workers"], request["timeout_s"])
        if op == "add_node":
            return self.add_node(request["args"])
        if op == "remove_node":
            return self.remove_node(request["node_id"], bool(request["graceful"]))
        if op == "shutdown":
            return self.shutdown()
        raise ValueError(f"unknown op {op!r}")

    def serve(self, requests: TextIO, answers: TextIO) -> None:
        """Answer ``requests`` until ``shutdown`` (or abort: see the module docstring)."""
        self.gate.install()
        pending: queue.Queue[dict[str, Any]] = queue.Queue()
        for target, args in ((self._read, (requests, pending)), (self._watch_parent, ())):
            threading.Thread(target=target, args=args, daemon=True).start()
        while True:
            request = pending.get()
            try:
                reply = {"ok": True, **self._answer(request)}
            except BaseException as exc:
                reply = {
                    "ok": False,
                    "error": error_text(exc),
                    "traceback": traceback.format_exc(),
                }
            answers.write(json.dumps(reply) + "\n")
            answers.flush()
            if request.get("op") == "shutdown":
                return


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    folder = args[args.index("--folder") + 1] if "--folder" in args[:-1] else None
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Ray's prints must not corrupt answers
    sys.stdout = sys.stderr
    Keeper(folder).serve(sys.stdin, answers)
    # Stopped in order: the nodes are gone and what they left was ended. Exit now, without
    # Ray's exit handlers (they would stop the nodes again) and before the end of input
    # (the driver closes it next) could start an abort.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
