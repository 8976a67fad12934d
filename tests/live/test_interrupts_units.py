"""The pieces that make an interrupted run leave nothing, without Ray: finding a cluster's
processes by token and session, ending them while more are being spawned, the keeper's
abort (asked, at the end of its input, at its parent's death), the spawn gate, and the
signal handling of :mod:`pytest_raycallbacks.interrupts` (one test imports Ray in a child and
checks that an interrupted process starts no Ray cluster). Fast; not marked ``live``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_raycallbacks.live import teardown
from pytest_raycallbacks.live.environment import TOKEN_ENV
from pytest_raycallbacks.live.processes import (
    SCAN_SUPPORTED,
    Owner,
    owned_processes,
    processes_with_token,
)
from pytest_raycallbacks.live.reap import reap
from pytest_raycallbacks.live.supervisor import KeeperProcess
from pytest_raycallbacks.live.waits import wait_until

pytestmark = pytest.mark.skipif(not SCAN_SUPPORTED, reason="reads processes from /proc")

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time; time.sleep(60)"
#: Starts, in its own session, a grandchild without the token (an environment of its own),
#: prints its pid, then sleeps.
SPAWNS_WITHOUT_TOKEN = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={})
    print(child.pid, flush=True)
    time.sleep(60)
    """
)
#: Like a raylet bringing up its agents: starts a new child every 0.1 s while it lives.
SPAWNER = textwrap.dedent(
    """
    import subprocess, sys, time
    while True:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(0.1)
    """
)


@pytest.fixture
def token() -> Iterator[str]:
    value = "unit-" + uuid.uuid4().hex
    yield value
    for process in owned_processes(Owner(value)):  # a failed test must not leak
        os.kill(process.pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie (its parent gone, nobody may collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _env(token: str) -> dict[str, str]:
    return {**os.environ, TOKEN_ENV: token, "PYTHONPATH": str(ROOT)}


def _started(token: str, count: int) -> list[int]:
    return wait_until(
        lambda: (
            [p.pid for p in processes_with_token(token)]
            if len(processes_with_token(token)) >= count
            else None
        ),
        what=f"{count} process(es) carrying the token to start",
        timeout_s=30,
    )


def test_a_session_names_processes_that_lost_the_token(token: str) -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", SPAWNS_WITHOUT_TOKEN],
        env=_env(token),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert leader.stdout is not None
        grandchild = int(leader.stdout.readline())
        by_token = {p.pid for p in processes_with_token(token)}
        by_session = {p.pid for p in owned_processes(Owner(token, leader.pid))}
        assert by_token == {leader.pid}
        assert by_session == {leader.pid, grandchild}
        assert reap(Owner(token, leader.pid), settle_s=0.2) == []
        assert leader.wait(timeout=10) is not None
        assert _gone(grandchild)
    finally:
        leader.kill()
        leader.wait(timeout=10)


def test_reaping_ends_what_is_spawned_meanwhile(token: str) -> None:
    spawner = subprocess.Popen(
        [sys.executable, "-c", SPAWNER], env=_env(token), start_new_session=True
    )
    try:
        _started(token, 3)  # the spawner and its first children
        assert reap(Owner(token, spawner.pid), grace_s=0.5) == []
        time.sleep(0.5)  # nothing comes back
        assert processes_with_token(token) == []
        assert owned_processes(Owner(token, spawner.pid)) == []
    finally:
        spawner.kill()
        spawner.wait(timeout=10)


def test_reaping_leaves_other_processes_alone(token: str) -> None:
    other = subprocess.Popen([sys.executable, "-c", SLEEPER], env=_env("unit-other"))
    ours = subprocess.Popen([sys.executable, "-c", SLEEPER], env=_env(token))
    try:
        _started(token, 1)
        assert teardown.end_token_processes(token) == []
        assert ours.wait(timeout=10) is not None
        assert other.poll() is None
    finally:
        for child in (other, ours):
            child.kill()
            child.wait(timeout=10)


def _keeper(tmp_path: Path, token: str) -> tuple[KeeperProcess, Path]:
    folder = tmp_path / "cluster"
    folder.mkdir()
    (folder / "session_x").mkdir()
    return KeeperProcess(_env(token), str(tmp_path / "keeper.log"), folder=str(folder)), folder


@pytest.mark.parametrize("how", ["abort request", "end of input"])
def test_an_aborted_keeper_ends_the_clusters_processes_and_folder(
    tmp_path: Path, token: str, how: str
) -> None:
    keeper, folder = _keeper(tmp_path, token)
    straggler = subprocess.Popen([sys.executable, "-c", SLEEPER], env=_env(token))
    try:
        _started(token, 2)  # the keeper and a process of "its cluster"
        if how == "abort request":
            assert keeper.process.stdin is not None
            keeper.process.stdin.write('{"op": "abort"}\n')
            keeper.process.stdin.flush()
        else:
            keeper.abort()
        assert keeper.wait(15), keeper.log_tail()
        assert keeper.session == keeper.pid  # exit status not collected yet: pid not reusable
        assert straggler.wait(timeout=10) is not None
        assert not folder.exists()
        assert "aborting" in keeper.log_tail()
    finally:
        keeper.close()
        straggler.kill()
        straggler.wait(timeout=10)
    assert keeper.session is None


def test_a_keeper_whose_driver_was_killed_ends_the_cluster(tmp_path: Path, token: str) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    driver = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        from pytest_raycallbacks.live.supervisor import KeeperProcess
        keeper = KeeperProcess(dict(os.environ), {str(tmp_path / "keeper.log")!r},
                               folder={str(folder)!r})
        print(keeper.pid, flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", driver], env=_env(token), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        keeper_pid = int(process.stdout.readline())
        straggler = subprocess.Popen([sys.executable, "-c", SLEEPER], env=_env(token))
        _started(token, 3)
        process.kill()
        process.wait(timeout=10)
        wait_until(
            lambda: processes_with_token(token) == [] and not folder.exists(),
            what="the keeper to end the cluster after its driver was killed",
            timeout_s=15,
        )
        assert straggler.wait(timeout=10) is not None
        assert _gone(keeper_pid)
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_keeper_that_will_not_exit_is_killed_and_its_cluster_ended(
    tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown, "KEEPER_STOP_S", 1.0)
    monkeypatch.setattr(teardown, "KEEPER_EXIT_S", 1.0)
    keeper, folder = _keeper(tmp_path, token)
    straggler = subprocess.Popen([sys.executable, "-c", SLEEPER], env=_env(token))
    try:
        _started(token, 2)
        os.kill(keeper.pid, signal.SIGSTOP)  # a keeper that cannot answer any more
        left = teardown.stop_local(None, keeper, token, str(folder), orderly=True)
        assert left == []
        assert straggler.wait(timeout=10) is not None
        assert not folder.exists()
        assert keeper.process.returncode is not None  # collected by stop_local
    finally:
        straggler.kill()
        straggler.wait(timeout=10)
        keeper.close()


def test_the_spawn_gate_stops_new_processes_once_closed() -> None:
    script = textwrap.dedent(
        """
        import subprocess, sys
        from pytest_raycallbacks.live.keeper import SpawnGate
        gate = SpawnGate()
        gate.install()
        gate.install()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        gate.close()
        try:
            subprocess.run([sys.executable, "-c", "pass"])
        except OSError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(""), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "refused: the cluster keeper is stopping" in done.stdout


INTERRUPTS = textwrap.dedent(
    """
    import signal, sys, time
    from pytest_raycallbacks import interrupts
    ignored = sys.argv[1] == "ignored"
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupts.install()
    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        print("first: KeyboardInterrupt", interrupts.interrupted(), flush=True)
    try:
        time.sleep(30)  # the teardown a second interrupt cuts short
    finally:
        print("never printed after a second interrupt", flush=True)
    """
)


def _interrupted(*signals: int, mode: str = "normal") -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTS, mode],
        env=_env(""),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.3)
    try:
        output = process.communicate(timeout=10)[0]
    finally:
        process.kill()
    return process.returncode, output


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM])
def test_a_first_interrupt_raises_and_a_second_exits_at_once(first: int) -> None:
    returncode, output = _interrupted(first, signal.SIGINT)
    assert "first: KeyboardInterrupt True" in output
    assert "second interrupt: exiting now" in output
    assert "never printed" not in output
    assert returncode == 2


def test_an_ignored_sigint_stays_ignored_and_handlers_are_restored() -> None:
    from pytest_raycallbacks import interrupts

    returncode, output = _interrupted(signal.SIGINT, signal.SIGTERM, signal.SIGTERM, mode="ignored")
    assert "first: KeyboardInterrupt" in output  # from the SIGTERM: the SIGINT was ignored
    assert returncode == 2
    # install() takes over only handlers still at their defaults: a driver connected earlier
    # in this session (ray.init installs a SIGTERM handler of its own) keeps Ray's.
    session_sigterm = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        interrupts.install()
        try:
            assert signal.getsignal(signal.SIGTERM) is not before[1]
        finally:
            interrupts.restore()
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

        def foreign(signum: int, frame: object) -> None:  # as ray.init installs one
            raise SystemExit(signum)

        signal.signal(signal.SIGTERM, foreign)
        interrupts.install()  # a handler someone else installed is left alone
        try:
            assert signal.getsignal(signal.SIGTERM) is foreign
        finally:
            interrupts.restore()
        assert signal.getsignal(signal.SIGTERM) is foreign
    finally:
        signal.signal(signal.SIGTERM, session_sigterm)


#: A thread the interrupt abandons (as it abandons a check's thread) calls Ray afterwards,
#: with no driver connected; then the script says what the call did and whether Ray made its
#: folder under $RAY_TMPDIR.
ABANDONED = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import ray
    from pytest_raycallbacks import interrupts
    interrupts.install()
    go, outcome = threading.Event(), []

    def abandoned():
        go.wait()
        try:
            outcome.append(ray.get_runtime_context().get_node_id())
        except Exception as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=abandoned, daemon=True)
    thread.start()
    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        go.set()
        thread.join(60)
    started = ray.is_initialized()
    if started:
        ray.shutdown()
    folder = os.path.exists(os.path.join(os.environ["RAY_TMPDIR"], "ray"))
    print("outcome", outcome, "started", started, "folder", folder, flush=True)
    """
)


def test_after_an_interrupt_a_ray_call_does_not_start_a_cluster(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", ABANDONED],
        env={**_env(""), "RAY_TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    lines = []
    while (line := process.stdout.readline()) and line.strip() != "ready":
        lines.append(line)
    process.send_signal(signal.SIGINT)
    try:
        output = "".join(lines) + process.communicate(timeout=120)[0]
    finally:
        process.kill()
    assert "outcome ['RuntimeError'] started False folder False" in output, output


#: Run as ``python -m`` (as ``python -m pytest`` runs): an interrupt lands inside code that
#: exec() runs from a string and is caught further up, as pytest catches it; the kit's
#: plugin then ends its run (``pytest_unconfigure``) and the process exits with status 2.
CAUGHT_IN_EXEC = textwrap.dedent(
    """
    import sys
    from pytest_raycallbacks import interrupts
    plugin = interrupts.InterruptPlugin()
    try:
        exec("import os, signal, time\\nos.kill(os.getpid(), signal.SIGINT)\\ntime.sleep(10)")
    except KeyboardInterrupt:
        print("caught", interrupts.interrupted(), flush=True)
    plugin.pytest_unconfigure(None)
    sys.exit(2)
    """
)


def test_an_interrupt_caught_after_it_left_exec_still_exits_with_status_2(
    tmp_path: Path,
) -> None:
    # Without the kit's reset CPython would end this process by SIGINT (-2): it marks a
    # KeyboardInterrupt that left exec() of a string as unhandled, even once caught.
    (tmp_path / "caughtinexec.py").write_text(CAUGHT_IN_EXEC)
    done = subprocess.run(
        [sys.executable, "-m", "caughtinexec"],
        cwd=tmp_path,
        env=_env(""),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "caught True" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 2, done.stdout + done.stderr
