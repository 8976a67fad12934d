"""The cluster keeper: a child process that owns a local ``ray.cluster_utils.Cluster``.

Why a process of its own: Ray starts nodes only from a main thread, installs signal and
exit handlers in the process that starts them, and a start that hangs cannot be interrupted
from inside (killing the half-started GCS makes Ray's own client wait 60 s and then abort the
process). Started from a child, a node start is bounded by killing the child, pytest's own
signal handling is left alone, and the child is the root of every process the cluster
has: they all inherit its environment, ownership token included.

Protocol: one JSON object per line on stdin, one answer per line on stdout
(``{"ok": true, ...}`` or ``{"ok": false, "error": "...", "traceback": "..."}``):

* ``{"op": "start", "head": {...}, "workers": [{...}, ...], "timeout_s": T,
  "temp_dir": D}`` starts the head and the workers (node arguments as ``Cluster.add_node``
  takes them) and answers ``{"address": ..., "nodes": [{"node_id": ..., "head": bool}]}``;
* ``{"op": "add_node", "args": {...}}`` answers ``{"node_id": ...}``;
* ``{"op": "remove_node", "node_id": ..., "graceful": bool}``;
* ``{"op": "shutdown"}`` stops every node, answers, and exits.

End of input (the driver died or closed the pipe) also stops every node, removes the
cluster's folder ``D`` (the driver cannot any more) and exits.
Run as ``python -m pytest_raycallbacks.live.keeper``; anything Ray prints goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import traceback
from typing import Any, TextIO

from .wording import error_text, short_id


class Keeper:
    """Serves the protocol for one cluster."""

    def __init__(self) -> None:
        self.cluster: Any = None
        self.nodes: dict[str, Any] = {}
        self.temp_dir: str | None = None

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
        return {"errors": errors}

    def serve(self, requests: TextIO, answers: TextIO) -> None:
        for line in requests:
            if not line.strip():
                continue
            request = json.loads(line)
            op = request.get("op")
            try:
                if op == "start":
                    self.temp_dir = request.get("temp_dir")
                    answer = self.start(request["head"], request["workers"], request["timeout_s"])
                elif op == "add_node":
                    answer = self.add_node(request["args"])
                elif op == "remove_node":
                    answer = self.remove_node(request["node_id"], bool(request["graceful"]))
                elif op == "shutdown":
                    answer = self.shutdown()
                else:
                    raise ValueError(f"unknown op {op!r}")
                reply = {"ok": True, **answer}
            except BaseException as exc:
                reply = {
                    "ok": False,
                    "error": error_text(exc),
                    "traceback": traceback.format_exc(),
                }
            answers.write(json.dumps(reply) + "\n")
            answers.flush()
            if op == "shutdown":
                return
        self.shutdown()  # end of input: the driver is gone, clean up for it
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Ray's prints must not corrupt answers
    sys.stdout = sys.stderr
    Keeper().serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
