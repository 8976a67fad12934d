"""Interrupting a certification run as a user would, and checking what it left.

:func:`interrupt_run` starts ``python -m pytest --raycallbacks-conformance ...
--raycallbacks-cluster both --raycallbacks-report cert.json`` in a project of its own, with
SIGINT at its default handler (a background job of a non-interactive shell ignores SIGINT,
and a child inherits that), a short folder of its own for Ray (``RAY_TMPDIR`` and
``RAYCALLBACKS_RAY_TMPDIR``) and a marker in its environment that every process it starts
inherits (the run's own token: the cluster's token is made inside the run). It waits for a
:class:`Moment`, sends the signals, and records the exit time, the exit status, the
certificate and whatever process or folder of the run is left (:class:`Interrupted`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live_helpers import child_env

MARK_ENV = "RAYCALLBACKS_TEST_RUN_MARK"
CALLBACK = """
def callback(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"max_model_len": 4096}}
    return None
"""
SPEC = "interruptedcb.callback"
HEADER = "raycallbacks: certifying"
#: How long a run may take to reach a moment, to exit after a signal, to leave nothing.
REACH_S = 180.0
EXIT_S = 30.0
CLEAN_S = 20.0
#: After the run left nothing: how long to watch that nothing comes back.
STEADY_S = 2.0


@dataclass
class RunState:
    """What the running kit shows: its output so far, its processes, the time since start."""

    output: str
    commands: list[str]
    elapsed_s: float


@dataclass(frozen=True)
class Moment:
    """When to send the signal: the first time ``reached(state)`` holds."""

    name: str
    reached: Callable[[RunState], bool]


def raylets(state: RunState) -> int:
    return sum("raylet/raylet" in c for c in state.commands)


MOMENTS = {
    "collecting": Moment("collecting", lambda s: HEADER in s.output),
    "fake checks": Moment("fake checks", lambda s: "-fake]" in s.output),
    # The worker nodes are coming up: the head's raylet and a worker's are there.
    "live start": Moment("live start", lambda s: raylets(s) >= 2),
    "live checks": Moment("live checks", lambda s: "-live] PASSED" in s.output),
    "teardown": Moment("teardown", lambda s: "[100%]" in s.output),
}


def at_second(seconds: float) -> Moment:
    """The moment ``seconds`` after the run started."""
    return Moment(f"{seconds:g} s", lambda s: s.elapsed_s >= seconds)


@dataclass
class Interrupted:
    """What an interrupted run did and left."""

    moment: str
    signals: tuple[str, ...]
    sent_at_s: float
    #: The moment came while the run was still going (else it exited first).
    reached: bool
    kit_started: bool
    returncode: int
    #: Seconds from the last signal sent to the exit.
    exit_s: float
    output: str
    certificate: dict[str, Any] | None
    left: list[str] = field(default_factory=list)
    #: When a process of the run was last seen, in seconds after its exit (None: never).
    seen_after_exit_s: float | None = None
    folders: list[str] = field(default_factory=list)

    def describe(self) -> str:
        when = f"at {self.sent_at_s:.1f} s" if self.reached else "never sent: exited first"
        return (
            f"{self.moment} ({'+'.join(self.signals)} {when}): exit "
            f"{self.returncode} after {self.exit_s:.1f} s, verdicts {self.verdicts()}, left "
            f"{self.left or 'nothing'} (last seen: {self.seen_after_exit_s} s after exit), folders "
            f"{self.folders or 'none'}"
        )

    def verdicts(self) -> list[str] | None:
        if self.certificate is None:
            return None
        return [c["verdict"] for c in self.certificate["callbacks"]]

    def outcomes(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for callback in (self.certificate or {}).get("callbacks", []):
            for check in callback["checks"]:
                counted[check["outcome"]] = counted.get(check["outcome"], 0) + 1
        return counted


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def run_processes(
    mark: str, root: str | None = None, exclude: int | None = None
) -> list[tuple[int, str]]:
    """Live processes (zombies excluded) whose environment carries ``mark`` or whose command
    line names ``root``."""
    needle, folder = f"{MARK_ENV}={mark}".encode(), root.encode() if root else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (os.getpid(), exclude):
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = _stat(entry)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if needle in environ.split(b"\0") or (folder is not None and folder in cmdline):
            found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def ray_root() -> Iterator[Path]:
    """A short folder for the run's Ray files (Ray's socket paths must stay short)."""
    root = Path(tempfile.mkdtemp(prefix="rcbi-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def interrupt_run(
    project: Path,
    root: Path,
    moment: Moment,
    signals: tuple[str, ...] = ("SIGINT",),
    *,
    between_s: float = 0.5,
) -> Interrupted:
    """Run the kit in ``project`` (Ray's files under ``root``), send ``signals`` (``between_s``
    apart) at ``moment``, and record what happened and what was left."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "interruptedcb.py").write_text(CALLBACK)
    (project / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider\nasyncio_default_fixture_loop_scope = function\n"
    )
    mark = uuid.uuid4().hex
    env = child_env(
        RAY_TMPDIR=str(root),
        RAYCALLBACKS_RAY_TMPDIR=str(root),
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        **{MARK_ENV: mark},
    )
    command = [sys.executable, "-m", "pytest", "-v", "--raycallbacks-conformance", SPEC]
    command += ["--raycallbacks-cluster", "both", "--raycallbacks-gpus", "simulate"]
    command += ["--raycallbacks-report", "cert.json"]
    out_path = project / "output.txt"
    with out_path.open("w") as out:
        begin = time.monotonic()
        child = subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        try:
            sent_at, reached, kit_started = _send_at(
                child, moment, signals, between_s, mark, begin, out_path
            )
            signalled = time.monotonic()
            try:
                returncode = child.wait(timeout=EXIT_S + 30)
            except subprocess.TimeoutExpired:
                returncode = child.wait(timeout=0) if child.poll() is not None else -999
            exit_s = time.monotonic() - signalled
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    left, seen_after = _left_behind(mark, str(root), wait_s=CLEAN_S)
    cert_path = project / "cert.json"
    run = Interrupted(
        moment=moment.name,
        signals=signals,
        sent_at_s=sent_at,
        reached=reached,
        kit_started=kit_started,
        returncode=returncode,
        exit_s=exit_s,
        output=out_path.read_text(errors="replace"),
        certificate=json.loads(cert_path.read_text()) if cert_path.exists() else None,
        left=[f"{pid}: {cmd[:120]}" for pid, cmd in left],
        seen_after_exit_s=seen_after,
        folders=_listing(root),
    )
    print(run.describe())  # shown with -rA: the exit time and what was left, per moment
    return run


def _send_at(
    child: subprocess.Popen[bytes],
    moment: Moment,
    signals: tuple[str, ...],
    between_s: float,
    mark: str,
    begin: float,
    out_path: Path,
) -> tuple[float, bool, bool]:
    """Wait until ``moment`` (or the child's exit), then send ``signals``. Returns when
    (seconds since the start), whether the moment came, whether the kit had started."""
    deadline = begin + REACH_S
    reached = False
    while child.poll() is None and time.monotonic() < deadline:
        output = out_path.read_text(errors="replace")
        commands = [c for _, c in run_processes(mark, exclude=child.pid)]
        state = RunState(output, commands, time.monotonic() - begin)
        if moment.reached(state):
            reached = True
            break
        time.sleep(0.05)
    sent_at = time.monotonic() - begin
    kit_started = HEADER in out_path.read_text(errors="replace")
    for index, name in enumerate(signals):
        if index:
            time.sleep(between_s)
        if child.poll() is None:
            child.send_signal(getattr(signal, name))
    return sent_at, reached, kit_started


def _left_behind(
    mark: str, root: str, *, wait_s: float
) -> tuple[list[tuple[int, str]], float | None]:
    """The run's processes still alive: polled for at most ``wait_s`` until none is, then
    watched for :data:`STEADY_S` (nothing may come back). Returns them and when one was
    last seen (seconds after the call; ``None``: never)."""
    begin = time.monotonic()
    last_seen: float | None = None
    quiet_since: float | None = None
    while True:
        found = run_processes(mark, root)
        now = time.monotonic()
        if found:
            last_seen, quiet_since = now - begin, None
            if now - begin >= wait_s:
                return found, last_seen
        else:
            quiet_since = now if quiet_since is None else quiet_since
            if now - quiet_since >= STEADY_S:
                return [], last_seen
        time.sleep(0.1)


def _listing(root: Path, depth: int = 3) -> list[str]:
    """What is under ``root`` (paths relative to it, ``depth`` levels at most)."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if len(relative.parts) <= depth:
            found.append(str(relative))
    return found


def end_leftovers(run: Interrupted) -> None:
    """Kill what a failed run left (by pid, so the next test starts clean)."""
    for entry in run.left:
        pid = int(entry.partition(":")[0])
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def assert_reached(run: Interrupted) -> None:
    """The signal was sent at the moment asked for, to a running kit."""
    assert run.reached and run.kit_started, f"{run.describe()}\n{run.output[-3000:]}"


def assert_reported(run: Interrupted) -> None:
    """The run exited in time with pytest's status for an interruption (or 0 when it had
    finished before the signal), printed the kit's summary and wrote a certificate whose
    verdicts say what finished: ``incomplete`` when a check did not run, and no check
    failed (an interruption is no failure of the callback)."""
    assert run.exit_s <= EXIT_S, run.describe()
    assert run.certificate is not None, f"no certificate: {run.describe()}\n{run.output[-3000:]}"
    outcomes = run.outcomes()
    finished = "not run" not in outcomes
    assert run.returncode == (2 if not finished else run.returncode), run.describe()
    assert run.returncode in (0, 2), run.describe()
    assert "failed" not in outcomes, f"{outcomes}: {run.describe()}\n{run.output[-3000:]}"
    expected = "certified" if finished else "incomplete"
    assert run.verdicts() == [expected], run.describe()
    assert "raycallbacks conformance" in run.output, run.output[-3000:]
    assert f"{SPEC}: {expected.upper()}" in run.output, run.output[-3000:]


def assert_nothing_left(run: Interrupted, *, at_exit: bool) -> None:
    """No process of the run and no Ray folder is left; ``at_exit``: none was there even
    when pytest had just exited (the run itself ended them all, not a keeper afterwards)."""
    assert not run.left, run.describe()
    if at_exit:
        assert run.seen_after_exit_s is None, run.describe()
    assert run.folders == [], run.describe()
