"""The warm cluster's life cycle: ``raycallbacks cluster up``, reuse by certification runs,
a killed run that leaves it clean for the next, ``cluster down``, and a stale state file.

One warm cluster (a single node with 2 GPUs, the cheapest) serves the whole module, with a
state folder of its own (``RAYCALLBACKS_STATE_DIR``); everything that connects to it runs in
a child process, since this process's driver may be connected to the session cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from live_helpers import child_env, run_pytest, write_module

from pytest_raycallbacks.cli import topology_of
from pytest_raycallbacks.live.config import DEFAULT_SIMULATED_NODES, TOPOLOGY_ENV, parse_topology
from pytest_raycallbacks.live.environment import TOKEN_ENV
from pytest_raycallbacks.live.processes import processes_with_token
from pytest_raycallbacks.live.warm_runs import RUNS_DIR, WarmChoice, choose
from pytest_raycallbacks.live.warm_state import (
    STATE_DIR_ENV,
    WarmState,
    boot_id,
    read_state,
    state_path,
    write_state,
)

TOPOLOGY = "2:4"

#: A child that connects to the warm cluster. ``look``: a plain driver lists what is alive
#: (placement groups, actors, run folders) and changes nothing; ``join``: the kit's way in
#: (``LiveCluster(warm=...)``, which removes what dead runs left), then the same list, then
#: an add_node that must be refused; ``crash``: join, leave detached objects and a run
#: folder, say so, and wait to be killed.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import ray
    from pytest_raycallbacks.live.warm_state import read_state

    mode, state_file = sys.argv[1], Path(sys.argv[2])
    state = read_state(state_file)

    def alive(me):
        groups = [
            pg for pg, entry in ray.util.placement_group_table().items()
            if entry["state"] != "REMOVED" and not pg.endswith(me)
        ]
        from ray._private import state as gcs
        actors = [
            a["ActorID"] for a in gcs.actors().values()
            if a["State"] != "DEAD" and a["JobID"] != me
        ]
        runs = sorted(p.name for p in (Path(state.temp_dir) / "runs").glob("*"))
        return {"groups": groups, "actors": actors, "runs": runs}

    if mode == "look":
        ray.init(address=state.address, logging_level="ERROR")
        print(json.dumps(alive(ray.get_runtime_context().get_job_id())))
        sys.exit(0)

    from pytest_raycallbacks.live import LiveCluster, ModeError
    cluster = LiveCluster(warm=state).start()
    me = ray.get_runtime_context().get_job_id()
    if mode == "join":
        report = alive(me)
        report["namespace"] = cluster.namespace
        try:
            cluster.add_node(num_gpus=1)
        except ModeError as exc:
            report["add_node"] = str(exc)
        cluster.close()
        print(json.dumps(report))
        sys.exit(0)

    @ray.remote(num_cpus=0)
    class Holder:
        def ping(self):
            return 1

    named = Holder.options(name="left-behind", lifetime="detached").remote()
    unnamed = Holder.options(lifetime="detached").remote()
    ray.get([named.ping.remote(), unnamed.ping.remote()])
    detached = ray.util.placement_group([{"CPU": 0.5}], lifetime="detached")
    plain = ray.util.placement_group([{"CPU": 0.5}])
    ray.get([detached.ready(), plain.ready()])
    print(json.dumps({"namespace": cluster.namespace, "job": me}), flush=True)
    time.sleep(600)
    """
)


@dataclass(frozen=True)
class Warm:
    state_dir: Path
    env: dict[str, str]
    state: WarmState
    child: Path


def cli(
    env: dict[str, str], *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_raycallbacks.cli", "cluster", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def child(warm: Warm, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(warm.child), mode, str(state_path(warm.env))],
        env=warm.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warm]:
    state_dir = tmp_path_factory.mktemp("warm-state")
    env = child_env(**{STATE_DIR_ENV: str(state_dir)})
    script = tmp_path_factory.mktemp("warm-child") / "warm_child.py"
    script.write_text(CHILD)
    started = cli(env, "up", "--topology", TOPOLOGY)
    state = read_state(state_path(env))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert state is not None
        yield Warm(state_dir, env, state, script)
    finally:
        cli(env, "down")
        if state is not None:
            from pytest_raycallbacks.live.teardown import end_token_processes

            end_token_processes(state.token)  # whatever a failed test left


@pytest.mark.live
def test_up_starts_it_in_the_background(warm: Warm) -> None:
    state = warm.state
    assert state.boot_id == boot_id() and state.topology == TOPOLOGY
    assert len(state.node_ids) == 1 and state.gpus == 2
    owned = processes_with_token(state.token)
    assert any(p.pid == state.pid for p in owned), "the keeper carries the token"
    assert any("gcs_server" in p.cmdline for p in owned)
    api = [p.cmdline for p in owned if "dashboard/dashboard.py" in p.cmdline]
    assert all("--disable-frontend" in cmdline for cmdline in api), "no dashboard"
    assert Path(state.temp_dir).is_dir() and len(state.temp_dir) <= 36
    status = cli(warm.env, "status")
    assert status.returncode == 0, status.stdout
    assert "warm cluster: up" in status.stdout and state.address in status.stdout


@pytest.mark.live
def test_up_again_keeps_the_one_that_is_up(warm: Warm) -> None:
    again = cli(warm.env, "up", "--topology", TOPOLOGY)
    assert again.returncode == 0
    assert "already up" in again.stdout
    assert read_state(state_path(warm.env)) == warm.state


@pytest.mark.live
def test_a_certification_run_uses_it_and_leaves_nothing(warm: Warm, tmp_path: Path) -> None:
    name = write_module(tmp_path, "def callback(phase, config, data):\n    return None\n")
    done = run_pytest(
        tmp_path,
        f"--raycallbacks-conformance={name}:callback",
        "--raycallbacks-cluster=live",
        "-v",  # with run_pytest's -q: the header line is shown
        env=warm.env,
        timeout_s=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("raycallbacks:"))
    assert f"(live: the warm cluster, 1 node(s), 2 GPU(s) at {warm.state.address})" in header
    assert f"address {warm.state.address}" in done.stdout  # the summary's cluster line
    left = child(warm, "look")
    assert left == {"groups": [], "actors": [], "runs": []}


@pytest.mark.live
def test_a_killed_run_leaves_it_clean_for_the_next(warm: Warm) -> None:
    crashed = subprocess.Popen(
        [sys.executable, str(warm.child), "crash", str(state_path(warm.env))],
        env=warm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert crashed.stdout is not None
        line = crashed.stdout.readline()
        assert line, crashed.stderr.read() if crashed.stderr else ""
        info = json.loads(line)
    finally:
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(timeout=30)
    deadline = time.monotonic() + 30
    left = child(warm, "look")
    while len(left["groups"]) > 1 and time.monotonic() < deadline:  # Ray removes the plain one
        time.sleep(0.5)
        left = child(warm, "look")
    assert len(left["groups"]) == 1 and len(left["actors"]) == 2, left  # the detached ones
    assert left["runs"] == [info["namespace"]]

    joined = child(warm, "join")
    assert joined["groups"] == [] and joined["actors"] == [], joined
    assert joined["runs"] == [joined["namespace"]]  # the killed run's folder is gone
    assert "cannot change the warm cluster" in joined["add_node"]
    assert child(warm, "look") == {"groups": [], "actors": [], "runs": []}


@pytest.mark.live
def test_down_ends_exactly_its_processes(warm: Warm) -> None:
    other_token = uuid.uuid4().hex
    bystander = subprocess.Popen(  # another cluster's process: down must leave it alone
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**warm.env, TOKEN_ENV: other_token},
    )
    try:
        down = cli(warm.env, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout
        assert processes_with_token(warm.state.token) == []
        assert [p.pid for p in processes_with_token(other_token)] == [bystander.pid]
    finally:
        bystander.kill()
        bystander.wait(timeout=10)
    assert not Path(warm.state.temp_dir).exists()
    assert not state_path(warm.env).exists()
    status = cli(warm.env, "status")
    assert status.returncode == 1 and "down" in status.stdout
    assert cli(warm.env, "down").returncode == 0  # nothing to stop is not an error


# ---------------------------------------------------------------------- no cluster needed


def installed_ray() -> str:
    from importlib.metadata import version

    return version("ray")


def fake_state(tmp_path: Path, **changes: Any) -> WarmState:
    folder = tmp_path / "rcb-stale"
    (folder / RUNS_DIR).mkdir(parents=True)
    state = WarmState(
        address="127.0.0.1:1",
        token=uuid.uuid4().hex,
        temp_dir=str(folder),
        pid=os.getpid(),
        boot_id=boot_id(),
        started_at=time.time(),
        topology=TOPOLOGY,
        node_ids=("a" * 56,),
        ray_version=installed_ray(),
        python=sys.executable,
        prefix=sys.prefix,
        log_path=str(folder / "warm-cluster.log"),
    )
    return replace(state, **changes)


def test_a_state_from_before_a_reboot_is_stale_and_removed(tmp_path: Path) -> None:
    env = child_env(**{STATE_DIR_ENV: str(tmp_path / "state")})
    state = fake_state(tmp_path, boot_id="an-earlier-boot")
    write_state(state, state_path(env))
    status = cli(env, "status", timeout_s=60)
    assert status.returncode == 1
    assert "removed a stale warm cluster's state (written before this machine last rebooted)" in (
        status.stdout
    )
    assert not state_path(env).exists() and not Path(state.temp_dir).exists()
    assert cli(env, "status", timeout_s=60).stdout.startswith("warm cluster: down")


def test_a_state_whose_keeper_is_gone_is_stale(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    env = child_env(**{STATE_DIR_ENV: str(tmp_path / "state")})
    write_state(fake_state(tmp_path, pid=int(gone.stdout)), state_path(env))
    choice = choose(certifying=True, gpus="auto", address=None, xdist=False, env=env)
    assert choice.state is None and "was stale (its keeper process" in choice.reason
    assert not state_path(env).exists()


def test_an_unreadable_state_is_removed_with_what_it_names(tmp_path: Path) -> None:
    env = child_env(**{STATE_DIR_ENV: str(tmp_path / "state")})
    folder = tmp_path / "rcb-old"
    folder.mkdir()
    state_path(env).parent.mkdir(parents=True)
    state_path(env).write_text(json.dumps({"token": uuid.uuid4().hex, "temp_dir": str(folder)}))
    status = cli(env, "status", timeout_s=60)
    assert status.returncode == 1 and "not one this version wrote" in status.stdout
    assert not state_path(env).exists() and not folder.exists()


@pytest.fixture
def stand_in_keeper() -> Iterator[tuple[int, str]]:
    """A process carrying a token of its own, standing in for a warm cluster's keeper."""
    token = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env={**os.environ, TOKEN_ENV: token}
    )
    try:
        yield process.pid, token
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("changes", "state_changes", "env_changes", "refusal"),
    [
        ({"certifying": False}, {}, {}, "only certification runs"),
        ({"address": "10.0.0.1:6379"}, {}, {}, "--raycallbacks-ray-address=10.0.0.1:6379"),
        ({"gpus": "physical"}, {}, {}, "--raycallbacks-gpus=physical asks for real GPUs"),
        ({"xdist": True}, {}, {}, "under xdist each worker starts a cluster of its own"),
        ({}, {"prefix": "/elsewhere"}, {}, "it runs the Python environment /elsewhere"),
        ({}, {"ray_version": "1.0.0"}, {}, "it runs Ray 1.0.0"),
        ({}, {}, {"RAYCALLBACKS_WARM_CLUSTER": "off"}, "RAYCALLBACKS_WARM_CLUSTER=off"),
        ({}, {}, {TOPOLOGY_ENV: "0,4"}, f"{TOPOLOGY_ENV}=0,4 differs from its topology 2:4"),
    ],
)
def test_when_a_run_does_not_use_it(
    tmp_path: Path,
    stand_in_keeper: tuple[int, str],
    changes: dict[str, Any],
    state_changes: dict[str, Any],
    env_changes: dict[str, str],
    refusal: str,
) -> None:
    env = child_env(**{STATE_DIR_ENV: str(tmp_path / "state")}, **env_changes)
    pid, token = stand_in_keeper  # alive with its token: the state is not stale
    write_state(fake_state(tmp_path, pid=pid, token=token, **state_changes), state_path(env))
    options: dict[str, Any] = {"certifying": True, "gpus": "auto", "address": None, "xdist": False}
    choice = choose(**{**options, **changes}, env=env)
    assert choice.state is None and refusal in choice.reason, choice
    header = choice.header()
    assert header is not None and header.startswith("live: a cluster of its own (the warm")
    assert state_path(env).exists()  # a refusal leaves the warm cluster alone


def test_no_state_and_the_up_topology(tmp_path: Path) -> None:
    env = {STATE_DIR_ENV: str(tmp_path / "none")}
    choice = choose(certifying=True, gpus="auto", address=None, xdist=False, env=env)
    assert choice == WarmChoice(None, "") and choice.header() is None  # nothing to say
    assert parse_topology(topology_of(2, 2)) == DEFAULT_SIMULATED_NODES
    assert topology_of(4, 1) == "0:2,4:4:A100"
