"""The probe server: one warm interpreter per process that forks a fresh child per probe.

This file is not imported by the kit: :mod:`conformance.probe_host` runs it with a
``python -c`` bootstrap (a file path or ``-m`` would put a kit folder on ``sys.path``). It
imports only the standard library and ``reference_runner`` before it says ``ready``, and
Ray's cloudpickle (when Ray is installed) at its first idle moment: the requests already
queued (the kit's configure-time admission) are forked first, without Ray, so they never
wait for its import; it never imports a user's module itself. Each child then
takes, from its request, what a fresh ``python -c`` in the kit's folder would have: the
environment, the working folder and a ``sys.path`` of ``''``, the deliberate import paths
and the user's ``PYTHONPATH``, then the standard entries (as in a Ray worker).

Contract. The server is single-threaded and only reads requests, forks, reaps and reports,
so every child starts from the same clean state: nothing of a user's code was ever imported
there. Each child becomes the leader of its own process group (set by the child and by the
server, so the group exists before anyone signals it), asks the kernel to SIGKILL it when
the server dies (Linux), sends its stdout and stderr to the request's output file, reports
each stage as it starts (``import``, ``load``, ``build``, ``ship``) on the protocol pipe,
writes its answer to the request's result file and ends with ``os._exit``. The server never
enforces a deadline: the kit does (:mod:`conformance.probe_host`), and asks the server to
SIGKILL a child's group with a ``kill`` request; the server is the one that reaps, so a
group it kills was never reused. On end of input (the kit closed the pipe or died) the server
kills the groups of the children still running, reaps them, removes the run's probe folder
(``--folder=``, where the kit puts every probe's files) and exits.

Protocol: one JSON object per line. In (stdin): a probe request ``{"id", "spec", "module",
"construct", "blob", "build", "result", "output", "env", "cwd", "path"}`` (the child's
environment, the kit's as it is when the probe starts; its working folder; the head of its
``sys.path``, ``''`` and the deliberate import paths, before the standard entries) or
``{"kill": id}``. Out (stdout, each
line shorter than ``PIPE_BUF`` so children and server never interleave): ``ready``,
``preloading`` and ``preloaded`` (around Ray's import, while nothing is forked),
``forked`` (``id``, ``pid``), ``stage`` (``id``, ``stage``), ``exited`` (``id``, ``status``:
exit code, or minus the signal number), ``fork-error``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import time
from typing import Any, cast

MARKER = "raycallbacks-probe-server"
_PR_SET_PDEATHSIG = 1


def _send(fd: int, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the kit is gone; the server ends at end of input
        os.write(fd, (json.dumps(message) + "\n").encode())


def _preload_runner() -> list[str]:
    """Import what every probe needs, once, before the server says ``ready``: the loader and
    the config. Returns the names imported."""
    import importlib

    loaded = []
    for name in (
        "reference_runner",
        "reference_runner.loading",
        "reference_runner.ray_callback_base",
    ):
        importlib.import_module(name)
        loaded.append(name)
    return loaded


def _preload_ray() -> tuple[list[str], set[str], list[str]]:
    """Import Ray's cloudpickle (the ``ship`` stage and every callback that imports Ray need
    it), once, when the server is idle. Returns the names imported, the modules Ray's import
    added and the ``sys.path`` entries it inserted, which are taken out again: a child gets
    them (and those modules in its import closure) only when its callback imports Ray, as in
    a fresh interpreter."""
    import importlib

    before, path = set(sys.modules), list(sys.path)
    try:
        importlib.import_module("ray.cloudpickle")
    except Exception:  # Ray is optional here; a child that needs it reports the failure
        return [], set(), []
    added_paths = [entry for entry in sys.path if entry not in path]
    sys.path[:] = path
    return ["ray.cloudpickle"], set(sys.modules) - before, added_paths


# ---------------------------------------------------------------------------------- child


def _qualified(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class _ImportClosure:
    """The modules importing and loading the spec imported: those new in this child, plus
    the preloaded Ray modules when the callback's code imports Ray (a fresh interpreter
    would have imported them for it)."""

    def __init__(self, ray_group: set[str], ray_paths: list[str]) -> None:
        import builtins

        self._builtins = builtins
        self._original = builtins.__import__
        self._before = set(sys.modules)
        self._ray_group = ray_group
        self._requested: set[str] = set()

        def recording(name: str, *args: Any, **kwargs: Any) -> Any:
            if ray_paths and name.split(".")[0] == "ray" and ray_paths[0] not in sys.path:
                sys.path[:0] = ray_paths  # what importing Ray does to sys.path
            self._requested.add(name)
            return self._original(name, *args, **kwargs)

        builtins.__import__ = recording

    def modules(self) -> dict[str, str | None]:
        self._builtins.__import__ = self._original
        modules = sys.modules.copy()
        names = set(modules) - self._before
        if any(name.split(".")[0] == "ray" for name in self._requested):
            names |= self._ray_group
        else:
            names |= self._requested & self._ray_group
        return {n: getattr(modules.get(n), "__file__", None) for n in sorted(names)}


def _stages(request: dict[str, Any], proto: int, ray: tuple[set[str], list[str]]) -> dict[str, Any]:
    """Run the probe's stages (see the module docstring); the answer as a JSON-able dict,
    also written to the result file as each stage starts (a killed child leaves what it
    found up to there)."""
    import importlib
    import pickle

    from reference_runner.loading import load_callback, resolve_spec
    from reference_runner.ray_callback_base import is_callback_base_class

    result: dict[str, Any] = {}

    def stage(name: str) -> None:
        _write(request["result"], result)
        _send(proto, {"event": "stage", "id": request["id"], "stage": name})

    closure = _ImportClosure(*ray)
    spec, module = request["spec"], request.get("module")
    stage("import")
    start = time.perf_counter()
    try:
        if module:
            importlib.import_module(module)
            result["import_s"] = time.perf_counter() - start
            stage("load")
        resolved = resolve_spec(spec)
        result.setdefault("import_s", time.perf_counter() - start)
        result["module"] = resolved.module_name
        target = resolved.target
        result["style"] = "callbackbase" if is_callback_base_class(target) else "callback"
        result["is_class"] = isinstance(target, type)
        if not module:
            stage("load")
        loaded = load_callback(spec) if request.get("construct") else target
        result["loaded_type"] = _qualified(loaded)
    except BaseException as exc:
        result.setdefault("import_s", time.perf_counter() - start)
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["modules"] = closure.modules()
        return result
    result["modules"] = closure.modules()
    if request.get("build"):
        stage("build")
        try:
            from reference_runner import LLMConfig
            from reference_runner.ray_callback_base import construct_as_ray

            with open(request["build"], encoding="utf-8") as handle:
                build = json.load(handle)
            construct_as_ray(
                cast(type, loaded),
                LLMConfig.model_validate_json(build["config"]),
                callback_kwargs=build["callback_kwargs"],
            )
        except BaseException as exc:
            result["build_error"] = f"{type(exc).__name__}: {exc}"
    if request.get("blob"):
        stage("ship")
        try:
            with open(request["blob"], "rb") as blob:
                shipped = pickle.load(blob)  # the kit pickled it itself
            result["shipped_type"] = _qualified(shipped)
            result["shipped_callable"] = callable(shipped)
        except BaseException as exc:
            result["ship_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _write(path: str, answer: dict[str, Any]) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(answer, handle, default=str)
    os.replace(partial, path)


def _child(
    request: dict[str, Any],
    inherited: list[int],
    ray: tuple[set[str], list[str]],
    base_path: list[str],
) -> None:
    """The forked child: isolate it, run the stages, write the answer, exit (never returns)."""
    status = 0
    try:
        os.setpgid(0, 0)
        if sys.platform.startswith("linux"):
            with contextlib.suppress(Exception):  # best effort: the server kills its groups
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if request.get("env") is not None:  # the kit's environment now, not at server start
            os.environ.clear()
            os.environ.update(request["env"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
        if request.get("path") is not None:  # as a fresh python -c there would have it
            sys.path[:] = [*request["path"], *(p for p in base_path if p not in request["path"])]
        proto = os.dup(1)  # not inheritable: the user's subprocesses never get it
        for fd in inherited:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        sys.argv = ["-c"]
        answer = _stages(request, proto, ray)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a user may have replaced or closed it
                stream.flush()
        answer["complete"] = True
        _write(request["result"], answer)
    except BaseException:
        status = 70
    os._exit(status)


# ---------------------------------------------------------------------------------- server


class _Server:
    def __init__(self, base_path: list[str]) -> None:
        self.ray: tuple[set[str], list[str]] = (set(), [])  # until Ray is preloaded
        self.ray_pending = True
        self.base_path = base_path
        self.children: dict[int, tuple[int, int | None]] = {}  # pid -> (request id, pidfd)
        self.buffer = b""
        self.open = True

    def fds(self) -> list[int]:
        return [fd for _, fd in self.children.values() if fd is not None]

    def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            return
        if "kill" in request:
            for pid, (rid, _) in self.children.items():
                if rid == request["kill"]:
                    _kill_group(pid)
            return
        try:
            pid = os.fork()
        except OSError as exc:
            _send(1, {"event": "fork-error", "id": request["id"], "error": str(exc)})
            return
        if pid == 0:
            _child(request, self.fds(), self.ray, self.base_path)
        with contextlib.suppress(OSError):  # the child did it first, or already exited
            os.setpgid(pid, pid)
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                pidfd = None
        self.children[pid] = (request["id"], pidfd)
        _send(1, {"event": "forked", "id": request["id"], "pid": pid})

    def reap(self, block: bool = False) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            rid, pidfd = self.children.pop(pid)
            if pidfd is not None:
                os.close(pidfd)
            code = os.waitstatus_to_exitcode(status) if done == pid and status else 0
            _send(1, {"event": "exited", "id": rid, "status": code})

    def serve(self) -> None:
        while self.open or self.children:
            if not self.open:  # the kit is gone: nobody will collect these
                for pid in self.children:
                    _kill_group(pid)
                self.reap(block=True)
                break
            polling = any(fd is None for _, fd in self.children.values())
            idle = self.ray_pending and not self.children
            timeout = 0.0 if idle else 0.02 if polling else None
            readable, _, _ = select.select([0, *self.fds()], [], [], timeout)
            if idle and not readable:
                self.preload_ray()
                continue
            if 0 in readable:
                chunk = os.read(0, 65536)
                if not chunk:
                    self.open = False
                self.buffer += chunk
                *lines, self.buffer = self.buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.handle(line)
            self.reap()

    def preload_ray(self) -> None:
        """Import Ray's cloudpickle now that no request waits and no child runs: the probes
        already asked for (the kit's configure-time admission) never wait for it, the
        later ones fork with it loaded. The kit is told, since nothing forks meanwhile."""
        _send(1, {"event": "preloading"})
        loaded, group, paths = _preload_ray()
        self.ray, self.ray_pending = (group, paths), False
        _send(1, {"event": "preloaded", "preloaded": loaded})


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def main() -> None:
    """Preload the runner, say ``ready``, serve until end of input (Ray is preloaded at the
    first idle moment)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the kit's to handle
    start = time.perf_counter()
    preloaded = _preload_runner()
    import threading

    _send(
        1,
        {
            "event": "ready",
            "pid": os.getpid(),
            "threads": threading.active_count(),
            "preloaded": preloaded,
            "startup_s": time.perf_counter() - start,
        },
    )
    own = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    base_path = [p for p in sys.path if p and p not in own]  # the standard entries
    _Server(base_path).serve()
    # The kit's probe folders live in the run's folder: removed here too, since a kit that
    # was killed (or exited at a second Ctrl-C) removed nothing. Every child is reaped and
    # every report written with os.write: nothing is left to flush or finalize, and tearing
    # down an interpreter that holds Ray takes longer than the kit should wait for at exit.
    folder = _argument("--folder=")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)


def _argument(prefix: str) -> str | None:
    """The value of the command-line argument ``prefix...`` (``None``: not given)."""
    return next((a[len(prefix) :] for a in sys.argv if a.startswith(prefix)), None)


if __name__ == "__main__" and MARKER in sys.argv:
    main()
