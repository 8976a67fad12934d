"""The kit's side of the probe server (:mod:`conformance.probe_server`): start it, hand it
probes, enforce their deadlines, collect their answers.

One :class:`ProbeServer` per process (:func:`shared_server`): the first probe starts it
(about one interpreter start with ``reference_runner`` imported; Ray's cloudpickle follows
when the server is first idle), every probe after that costs a ``fork``; each request
carries the child's working folder, ``sys.path`` head (:func:`probe_path`) and environment,
so one server serves every folder.
A daemon *deadline thread* per server reads the server's reports and owns every deadline,
so no deadline depends on anyone waiting for the answer:

* until the child reports its first stage: :data:`STARTUP_S` while the server starts or
  imports Ray (it says so), else :data:`FORK_S`;
* the ``import`` stage: the import limit (plus :func:`reference_runner.bounded.grace_s`);
* each later stage (``load``: constructing a class spec; ``build``: building a
  ``CallbackBase`` subclass as Ray does; ``ship``: rebuilding the pickled callable): the
  per-call timeout plus the same grace.

On expiry it asks the server to SIGKILL the child's process group (the child and whatever
it started), and the probe's answer says which stage overran. A server that dies, or does
not start or import Ray within :data:`STARTUP_S`, fails the probes in flight (never the run)
and is replaced at the next probe. At interpreter exit every server is closed: end of input
makes it kill and reap what still runs (one busy importing Ray is killed at once).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from reference_runner.bounded import grace_s

from . import probe_server

#: Longest wait for the server to start, or to import Ray's cloudpickle (nothing forks then).
STARTUP_S: Final = 60.0
#: Longest wait for a forked child to report its first stage once the server is ready.
FORK_S: Final = 10.0
#: Longest wait for the server to reap a child it was asked to kill.
KILL_WAIT_S: Final = 5.0
_OUTPUT_TAIL: Final = 2000
#: Runs the server's file as ``__main__`` without putting its folder on ``sys.path`` (as
#: ``python path/to/file.py`` would): ``sys.path[0]`` stays ``''``, the invocation folder.
_BOOTSTRAP: Final = (
    "import sys; p = sys.argv[1]; exec(compile(open(p, encoding='utf-8').read(), p, 'exec'))"
)

_STAGE_WORDS: Final = {
    "queued": "starting the probe interpreter",
    "import": "importing the module",
    "load": "loading the callback (resolving the spec, constructing a class spec)",
    "build": "building the class as Ray builds it",
    "ship": "rebuilding the shipped callable",
}


@dataclass
class Probe:
    """One probe as the deadline thread tracks it; :attr:`done` is set once it ended."""

    id: int
    spec: str
    folder: Path
    import_limit_s: float
    stage_limit_s: float
    submitted: float
    stage: str = "queued"
    stage_started: float = 0.0
    pid: int | None = None
    overran: str | None = None
    kill_sent: float | None = None
    status: int | None = None
    failure: str | None = None
    ended: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def result_path(self) -> Path:
        return self.folder / "result.json"

    @property
    def output_path(self) -> Path:
        return self.folder / "output.txt"

    def answer(self) -> dict[str, Any]:
        """What the child wrote (after each stage, so also when it was killed)."""
        try:
            data: dict[str, Any] = json.loads(self.result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data

    def output(self) -> str:
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")[-_OUTPUT_TAIL:]
        except OSError:
            return ""


def describe_stage(stage: str) -> str:
    """``importing the module`` for ``import``, and so on."""
    return _STAGE_WORDS.get(stage, stage)


class ProbeServer:
    """One probe server process and its deadline thread (see the module docstring)."""

    def __init__(self, cwd: str, env: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self._probes: dict[int, Probe] = {}
        self._ids = itertools.count(1)
        self.ready_at: float | None = None
        self.preloading_since: float | None = None  # the server imports Ray: nothing forks
        self.preloaded_at = 0.0
        self.info: dict[str, Any] = {}
        self.dead: str | None = None
        self.started = time.monotonic()
        #: Every probe's files go in a folder here; removed by :meth:`close`, and by the
        #: server when it sees the end of its input (also when this process was killed).
        self.folder = tempfile.mkdtemp(prefix=f"raycallbacks-probes-{os.getpid()}-")
        self._stderr = tempfile.TemporaryFile(prefix="raycallbacks-probe-server-")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BOOTSTRAP,
                probe_server.__file__,
                probe_server.MARKER,
                f"--owner={os.getpid()}",
                f"--folder={self.folder}",
            ],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._stdout_fd = self.process.stdout.fileno()
        self._thread = threading.Thread(
            target=self._watch, name="raycallbacks-probe-deadlines", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ the kit's side

    def submit(
        self, request: dict[str, Any], folder: Path, import_limit_s: float, stage_limit_s: float
    ) -> Probe:
        """Hand the server a probe (``request``: spec, module, construct, blob, build) whose
        files live in ``folder``; the deadlines start now."""
        with self._lock:
            probe = Probe(
                id=next(self._ids),
                spec=str(request.get("spec", "")),
                folder=folder,
                import_limit_s=import_limit_s,
                stage_limit_s=stage_limit_s,
                submitted=time.monotonic(),
            )
            if self.dead is not None:
                probe.failure = self.dead
                probe.done.set()
                return probe
            self._probes[probe.id] = probe
            line = {
                **request,
                "id": probe.id,
                "result": str(probe.result_path),
                "output": str(probe.output_path),
            }
            try:
                self._stdin.write((json.dumps(line) + "\n").encode())
                self._stdin.flush()
            except OSError as exc:
                self._fail_all(f"the probe server is gone ({exc})")
        return probe

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._probes)

    def close(self) -> None:
        """End of input: the server kills and reaps what still runs, then exits. One that
        is importing Ray (it said so) runs no child, since it imports only when none runs,
        and would read the end of input only after that import: it is killed at once."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self.preloading_since is not None:
            with contextlib.suppress(OSError):
                self.process.kill()
        try:
            self.process.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._thread.join(timeout=KILL_WAIT_S)
        self._stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------------ the deadline thread

    def _watch(self) -> None:
        buffer = b""
        while True:
            readable, _, _ = select.select([self._stdout_fd], [], [], self._next_deadline())
            if readable:
                chunk = os.read(self._stdout_fd, 65536)
                if not chunk:  # the server ended
                    self._fail_all(self._death_note())
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._on_line(line)
            self._enforce()

    def _next_deadline(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            ends = [self._deadline(p) for p in self._probes.values()]
        if self.ready_at is None:
            ends.append(self.started + STARTUP_S)
        if self.preloading_since is not None:
            ends.append(self.preloading_since + STARTUP_S)
        return max(0.0, min(ends) - now) if ends else None

    def _deadline(self, probe: Probe) -> float:
        if probe.kill_sent is not None:
            return probe.kill_sent + KILL_WAIT_S
        if probe.stage == "queued":
            if self.ready_at is None:
                return self.started + STARTUP_S
            if self.preloading_since is not None:  # it forks once Ray is imported
                return self.preloading_since + STARTUP_S
            return max(probe.submitted, self.ready_at, self.preloaded_at) + FORK_S
        limit = probe.import_limit_s if probe.stage == "import" else probe.stage_limit_s
        return probe.stage_started + limit + grace_s(limit)

    def _on_line(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # not ours (a preloaded module printed something)
        kind = event.get("event")
        if kind == "ready":
            self.info = event
            self.ready_at = time.monotonic()
            return
        if kind == "preloading":
            self.preloading_since = time.monotonic()
            return
        if kind == "preloaded":
            self.preloading_since, self.preloaded_at = None, time.monotonic()
            return
        with self._lock:
            probe = self._probes.get(event.get("id"))
            if probe is None:
                return
            if kind == "forked":
                probe.pid = event.get("pid")
            elif kind == "stage" and probe.overran is None:
                probe.stage = str(event.get("stage"))
                probe.stage_started = time.monotonic()
            elif kind == "exited":
                probe.status = int(event.get("status", 0))
                self._finish(probe)
            elif kind == "fork-error":
                probe.failure = f"the probe server could not fork: {event.get('error')}"
                self._finish(probe)

    def _enforce(self) -> None:
        now = time.monotonic()
        stuck = None
        if self.ready_at is None and now >= self.started + STARTUP_S:
            stuck = f"the probe interpreter did not start within {STARTUP_S:g} s"
        elif self.preloading_since is not None and now >= self.preloading_since + STARTUP_S:
            stuck = (
                f"the probe interpreter did not import Ray within {STARTUP_S:g} s (is a "
                "module named 'ray' on PYTHONPATH or the working folder blocking at import?)"
            )
        if stuck is not None:  # the server is stuck: the next probe starts a new one
            self._fail_all(stuck)
            with contextlib.suppress(OSError):
                self.process.kill()
            return
        with self._lock:
            for probe in list(self._probes.values()):
                if now < self._deadline(probe):
                    continue
                if probe.kill_sent is not None:  # the server did not reap it: give up on it
                    probe.failure = "the probe server did not end the probe it was asked to kill"
                    self._finish(probe)
                    continue
                probe.overran = probe.stage
                probe.kill_sent = now
                with contextlib.suppress(OSError, ValueError):
                    self._stdin.write((json.dumps({"kill": probe.id}) + "\n").encode())
                    self._stdin.flush()

    def _finish(self, probe: Probe) -> None:
        """Called with the lock held."""
        probe.ended = time.monotonic()
        self._probes.pop(probe.id, None)
        probe.done.set()

    def _fail_all(self, why: str) -> None:
        with self._lock:
            self.dead = why
            for probe in list(self._probes.values()):
                probe.failure = why
                self._finish(probe)

    def _death_note(self) -> str:
        code = self.process.poll()
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")[-_OUTPUT_TAIL:]
        except (OSError, ValueError):
            text = ""
        return f"the probe server ended (status {code}): {text.strip() or 'no output'}"


# ---------------------------------------------------------------------------------- registry

_servers: dict[str, ProbeServer] = {}
_registry_lock = threading.Lock()


def probe_env(import_paths: tuple[str, ...]) -> dict[str, str]:
    """The environment of the probe interpreter: ours, with ``PYTHONPATH`` = the deliberate
    import paths then the user's ``PYTHONPATH``, and no trace of the test session."""
    env = dict(os.environ)
    paths = [*import_paths, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    for name in [n for n in env if n.startswith("PYTEST_")]:
        env.pop(name)
    return env


def probe_path(import_paths: tuple[str, ...]) -> list[str]:
    """The head of ``sys.path`` in a fresh ``python -c`` started with
    :func:`probe_env`: ``''`` (the working folder), then each ``PYTHONPATH`` entry made
    absolute, without duplicates; the server appends the standard entries."""
    entries = filter(None, probe_env(import_paths)["PYTHONPATH"].split(os.pathsep))
    return ["", *dict.fromkeys(os.path.abspath(entry) for entry in entries)]


def shared_server() -> ProbeServer:
    """This process's probe server (started on first use; one that died is replaced). One
    serves every folder and set of import paths: each child takes its working folder,
    ``sys.path`` head and environment from its request."""
    with _registry_lock:
        server = _servers.get(sys.executable)
        if server is not None and server.dead is None:
            return server
        if server is not None:
            server.close()
        server = _servers[sys.executable] = ProbeServer(os.getcwd(), probe_env(()))
        return server


def close_all() -> None:
    """Close every probe server (at interpreter exit; also safe to call earlier)."""
    with _registry_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()


atexit.register(close_all)
