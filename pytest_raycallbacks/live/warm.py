"""``raycallbacks cluster up|status|down``: a warm local cluster kept between runs.

Starting the kit's simulated GPU cluster costs seconds every certification run; a warm
cluster is started once and reused by every ``pytest --raycallbacks-cluster live`` run on
this machine while it is up (:mod:`.warm_runs`). Contract:

* :func:`up` starts the simulated cluster (``topology`` as ``$RAYCALLBACKS_SIMULATE_NODES``
  spells it) in the background: a daemon (:mod:`.warm_daemon`) in a session of its own,
  with its own short folder under ``tmp_root``, its own ownership token and no dashboard,
  and waits (bounded by ``start_timeout_s``) until it has written the state file
  (:mod:`.warm_state`). A warm cluster already up is left as it is; a stale one is cleaned
  away first. A failed or interrupted start leaves nothing running.
* :func:`status` says ``up`` (with the details), ``down``, or ``stale``/``unhealthy`` (with
  the reason); a stale state (after a reboot, or its keeper gone) is cleaned away.
* :func:`down` ends exactly the warm cluster's processes (its keeper by SIGTERM, then any
  process still carrying its token), removes its folder and the state file.
* Each returns the command's exit status and writes what it did to ``echo``. One command
  at a time changes the state (a lock file beside it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from . import local_start, teardown
from .config import LiveClusterConfig, NodeSpec, parse_topology
from .warm_state import (
    Health,
    StateFileError,
    WarmState,
    carries_token,
    discard,
    discard_unreadable,
    health,
    read_state,
    remove_state,
    state_path,
)

Echo = Callable[[str], None]
#: How long ``down`` waits for the keeper to stop the nodes before ending them by token.
STOP_WAIT_S: Final = 60.0
LOCK_FILE: Final = "warm-cluster.lock"


@contextlib.contextmanager
def _state_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _load(path: Path, echo: Echo) -> tuple[WarmState | None, Health | None]:
    """The state and its health; a stale state is cleaned away (and ``None`` returned)."""
    try:
        state = read_state(path)
    except StateFileError as exc:
        left = discard_unreadable(path)
        echo(
            f"{exc}: removed it and the cluster it named"
            + (f" ({len(left)} process(es) would not end)" if left else "")
        )
        return None, None
    if state is None:
        return None, None
    verdict = health(state)
    if verdict.status == "stale":
        left = discard(state, path)
        echo(
            f"removed a stale warm cluster's state ({verdict.reason}): folder {state.temp_dir}"
            + (f"; {len(left)} process(es) would not end" if left else "")
        )
        return None, verdict
    return state, verdict


def up(
    topology: str,
    *,
    tmp_root: str = "/tmp",
    start_timeout_s: float = 120.0,
    path: Path | None = None,
    echo: Echo = print,
) -> int:
    """Start the warm cluster (see the module doc); 0 when it is up."""
    path = path or state_path()
    nodes = parse_topology(topology, source="--topology")
    with _state_lock(path):
        state, verdict = _load(path, echo)
        if state is not None and verdict is not None:
            if verdict.up:
                echo(f"the warm cluster is already up: {state.summary()} (keeper {state.pid})")
                return 0
            echo(
                f"a warm cluster is recorded but {verdict.reason}; run 'raycallbacks cluster "
                "down' first"
            )
            return 1
        return _start(nodes, topology, tmp_root, start_timeout_s, path, echo)


def _start(
    nodes: tuple[NodeSpec, ...],
    topology: str,
    tmp_root: str,
    start_timeout_s: float,
    path: Path,
    echo: Echo,
) -> int:
    config = LiveClusterConfig(gpus="simulate", nodes=nodes, tmp_root=tmp_root)
    token = uuid.uuid4().hex
    temp_dir = local_start.make_temp_dir(tmp_root, None)
    log_path = os.path.join(temp_dir, "warm-cluster.log")
    spec = {
        "head": local_start.head_node_args(config, nodes[0], mode="simulate", temp_dir=temp_dir),
        "workers": [local_start.node_args(config, spec) for spec in nodes[1:]],
        "timeout_s": start_timeout_s,
        "temp_dir": temp_dir,
        "token": token,
        "topology": topology,
        "state_path": str(path),
        "log_path": log_path,
    }
    spec_path = os.path.join(temp_dir, "warm-spec.json")
    Path(spec_path).write_text(json.dumps(spec))
    env = local_start.keeper_environment(
        token=token, temp_dir=temp_dir, simulate=True, devices=None
    )
    begin = time.monotonic()
    with open(log_path, "ab") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pytest_raycallbacks.live.warm_daemon", spec_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd=temp_dir,
            start_new_session=True,
        )
    try:
        problem = _wait_started(daemon, token, path, start_timeout_s + 10.0)
    except BaseException:
        _abandon(daemon, token, temp_dir, path)
        echo("interrupted: the warm cluster was not started (nothing is left running)")
        raise
    if problem is not None:
        tail = _log_tail(log_path)
        _abandon(daemon, token, temp_dir, path)
        echo(f"could not start the warm cluster: {problem}\n{tail}".rstrip())
        return 1
    state = read_state(path)
    assert state is not None
    echo(
        f"warm cluster up in {time.monotonic() - begin:.1f} s: {state.summary()}, topology "
        f"{state.topology}, keeper pid {state.pid}, folder {state.temp_dir}. "
        "'pytest --raycallbacks-cluster live' uses it; 'raycallbacks cluster down' stops it."
    )
    return 0


def _wait_started(
    daemon: subprocess.Popen[bytes], token: str, path: Path, timeout_s: float
) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(StateFileError):
            state = read_state(path)
            if state is not None and state.token == token:
                return None
        if daemon.poll() is not None:
            return f"its keeper exited with status {daemon.returncode}"
        time.sleep(0.1)
    return f"it was not up after {timeout_s:g} s"


def _abandon(daemon: subprocess.Popen[bytes], token: str, temp_dir: str, path: Path) -> None:
    """End a daemon that did not start (or was interrupted), and all it started."""
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
    teardown.end_token_processes(token)
    shutil.rmtree(temp_dir, ignore_errors=True)
    with contextlib.suppress(StateFileError):
        state = read_state(path)
        if state is not None and state.token == token:
            remove_state(state, path)


def _log_tail(log_path: str, lines: int = 20) -> str:
    try:
        text = Path(log_path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"--- warm cluster log ({log_path}), last lines:\n" + "\n".join(text)


def status(*, path: Path | None = None, echo: Echo = print) -> int:
    """Say whether the warm cluster is up: 0 up, 1 down (or stale, now cleaned away),
    2 unhealthy."""
    path = path or state_path()
    with _state_lock(path):
        state, verdict = _load(path, echo)
    if state is None or verdict is None:
        echo(f"warm cluster: down (no state in {path})")
        return 1
    if not verdict.up:
        echo(
            f"warm cluster: {verdict.status}: {verdict.reason}; 'raycallbacks cluster down' ends it"
        )
        return 2
    from .warm_runs import active_runs

    age = time.time() - state.started_at
    echo(
        "\n".join(
            [
                "warm cluster: up",
                f"  address    {state.address}",
                f"  nodes      {len(state.node_ids)} ({state.topology}), {state.gpus} GPU(s)",
                f"  keeper     pid {state.pid}, up for {age:.0f} s",
                f"  folder     {state.temp_dir}",
                f"  ray        {state.ray_version} ({state.python})",
                f"  runs now   {len(active_runs(state))}",
                f"  state file {path}",
            ]
        )
    )
    return 0


def down(*, path: Path | None = None, echo: Echo = print) -> int:
    """Stop the warm cluster (see the module doc); 0 when nothing of it is left."""
    path = path or state_path()
    with _state_lock(path):
        state, _ = _load(path, echo)
        if state is None:
            echo("no warm cluster is up")
            return 0
        if carries_token(state.pid, state.token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            while carries_token(state.pid, state.token) and time.monotonic() < deadline:
                time.sleep(0.1)
        left = discard(state, path)
    if left:
        echo(
            "the warm cluster is stopped, but these processes would not end:\n"
            + "\n".join(f"  pid {p.pid}: {p.cmdline}" for p in left)
        )
        return 1
    echo(f"warm cluster at {state.address} stopped; folder {state.temp_dir} removed")
    return 0
