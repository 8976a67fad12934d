"""Modes, hygiene and xdist, each proven in a child process: a standalone cluster ends
exactly its own processes, ``physical`` fails without GPUs, ``address`` mode starts and stops
nothing and cleans up only what it created, and ``-n 2`` gives each worker its own cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from live_helpers import child_env, read_records, run_pytest, token_processes

from pytest_raycallbacks.live.waits import wait_until

pytestmark = pytest.mark.live


def core_processes(cluster: Any) -> set[int]:
    """The pids of the session cluster's GCS and raylets."""
    return {
        p.pid
        for p in cluster.owned_processes()
        if "gcs_server" in p.cmdline or "/raylet" in p.cmdline
    }


STANDALONE = """
    import json, os, sys, warnings
    from pytest_raycallbacks.live import LiveCluster

    record = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster = LiveCluster(gpus="simulate")  # + RAYCALLBACKS_* from the environment
        cluster.start()
    record["warnings"] = [str(w.message) for w in caught]
    record["ray_address_during"] = os.environ.get("RAY_ADDRESS")
    record["token"] = cluster.token
    record["temp_dir"] = cluster.temp_dir
    record["pids"] = [p.pid for p in cluster.owned_processes()]
    record["gpus"] = sorted(cluster.gpus_per_node().values())
    record["view"] = list(cluster.gpu_view(num_gpus=2).visible_devices)
    cluster.close()
    record["leftover"] = [p.pid for p in cluster.leftover_processes]
    record["ray_address_after"] = os.environ.get("RAY_ADDRESS")
    record["cuda_visible_devices_after"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    print("RECORD " + json.dumps(record))
"""


def test_a_standalone_cluster_ends_exactly_its_own_processes(
    gpu_ray_cluster: Any, tmp_path: Path
) -> None:
    """Outside pytest, with CUDA_VISIBLE_DEVICES and RAY_ADDRESS in the environment."""
    ours_before = core_processes(gpu_ray_cluster)
    script = tmp_path / "standalone.py"
    script.write_text(textwrap.dedent(STANDALONE))
    env = child_env(
        RAYCALLBACKS_SIMULATE_NODES="2",  # one head node with 2 logical GPUs: cheap
        CUDA_VISIBLE_DEVICES="0",  # lists fewer GPUs than we simulate: must not matter
        RAY_ADDRESS="127.0.0.1:1",  # must not be used, and must be said
    )
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RECORD "))
    record = json.loads(line.removeprefix("RECORD "))
    assert record["gpus"] == [2]
    assert sorted(record["view"]) == ["0", "1"]
    assert any("RAY_ADDRESS='127.0.0.1:1'" in w for w in record["warnings"])
    assert record["ray_address_during"] is None
    assert record["ray_address_after"] == "127.0.0.1:1"  # restored
    assert record["cuda_visible_devices_after"] == "0"  # the driver's own env is untouched
    assert record["pids"]
    assert record["leftover"] == []
    assert token_processes(record["token"]) == []  # seen from here too
    assert not Path(record["temp_dir"]).exists()
    # Our own session cluster was not touched.
    assert core_processes(gpu_ray_cluster) == ours_before
    assert all(n.alive for n in gpu_ray_cluster.nodes())


FAKE_PHYSICAL = """
    import json, os, sys, time
    import pytest_raycallbacks.live.cluster as cluster_module
    from pytest_raycallbacks.live import LiveCluster
    from pytest_raycallbacks.live.gpus import GpuDetection

    # Pretend this machine has GPUs 0-3 (Ray does not check that devices exist), and that
    # we are xdist worker gw1 of 2: we must get GPUs 1 and 3 only.
    cluster_module.detect_physical_gpus = lambda: GpuDetection(("0", "1", "2", "3"), "fake", ())
    os.environ.update(PYTEST_XDIST_WORKER="gw1", PYTEST_XDIST_WORKER_COUNT="2")
    cluster = LiveCluster(gpus="physical").start()
    record = {
        "mode": cluster.mode,
        "physical": cluster.physical,
        "gpus": sorted(cluster.gpus_per_node().values()),
        "view": list(cluster.gpu_view(num_gpus=1).visible_devices),
        "detection": cluster.describe()["gpu_detection"],
        "token": cluster.token,
        "temp_dir": cluster.temp_dir,
    }
    print("RECORD " + json.dumps(record))
    sys.stdout.flush()
    time.sleep(600)  # the test kills us here: no teardown runs
"""


def test_physical_mode_and_a_driver_that_dies(tmp_path: Path) -> None:
    """The physical start path, with detection faked (this machine has no GPU): the
    worker's share of the devices goes to Ray. Then the driver is SIGKILLed, so no teardown
    runs: the keeper sees its pipe close, stops the nodes and removes the folder."""
    script = tmp_path / "fake_physical.py"
    script.write_text(textwrap.dedent(FAKE_PHYSICAL))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = next((ln for ln in child.stdout if ln.startswith("RECORD ")), None)
        assert line is not None, f"the child exited with {child.wait(timeout=30)}"
        record = json.loads(line.removeprefix("RECORD "))
        assert token_processes(record["token"])
    finally:
        child.kill()
        child.wait(timeout=30)
    assert record["mode"] == "physical"
    assert record["physical"] is True
    assert record["gpus"] == [2]  # one node: this machine, with its share of the GPUs
    assert record["view"] in (["1"], ["3"])  # real device ids, from this worker's share
    assert "xdist worker gw1 of 2 gets ['1', '3']" in record["detection"]
    wait_until(
        lambda: not token_processes(record["token"]) and not Path(record["temp_dir"]).exists(),
        what="the orphaned cluster's processes and folder to go",
        timeout_s=60,
    )


START_TIMEOUT = """
    import json, time
    from pytest_raycallbacks.live import LiveCluster, WaitTimeoutError

    cluster = LiveCluster(gpus="simulate", start_timeout_s=0.5)
    started = time.monotonic()
    try:
        cluster.start()
    except WaitTimeoutError as exc:
        record = {"error": str(exc), "seconds": time.monotonic() - started}
    record.update(token=cluster.token, temp_dir=cluster.temp_dir, leftover=[
        p.pid for p in cluster.leftover_processes])
    print("RECORD " + json.dumps(record))
"""


def test_a_start_that_overruns_its_bound_fails_naming_it_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    script = tmp_path / "start_timeout.py"
    script.write_text(textwrap.dedent(START_TIMEOUT))
    done = subprocess.run(
        [sys.executable, str(script)], env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RECORD "))
    record = json.loads(line.removeprefix("RECORD "))
    assert (
        "timed out after 0.5 s waiting for the Ray head node and 2 more node(s)"
        in (record["error"])
    )
    assert record["seconds"] < 30
    assert record["leftover"] == []
    assert token_processes(record["token"]) == []
    assert not Path(record["temp_dir"]).exists()


def test_bad_configuration_fails_the_fixture_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "test_bad_config.py").write_text("def test_it(gpu_ray_cluster):\n    pass\n")
    done = run_pytest(
        tmp_path, env=child_env(RAYCALLBACKS_SIMULATE_NODES="two,gpus"), timeout_s=120
    )
    assert done.returncode == 1
    assert "gpu_ray_cluster: bad configuration: RAYCALLBACKS_SIMULATE_NODES='two,gpus'" in (
        done.stdout
    )


def test_physical_mode_fails_rather_than_skips_without_gpus(tmp_path: Path) -> None:
    (tmp_path / "test_needs_gpus.py").write_text(
        "def test_it(gpu_ray_cluster):\n    assert gpu_ray_cluster.physical\n"
    )
    done = run_pytest(
        tmp_path,
        "--raycallbacks-gpus=physical",
        env=child_env(CUDA_VISIBLE_DEVICES=""),  # hides any GPU, on any machine
        timeout_s=120,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 error" in done.stdout
    assert "skipped" not in done.stdout
    assert "physical GPUs were required (--raycallbacks-gpus=physical)" in done.stdout
    assert "CUDA_VISIBLE_DEVICES=''" in done.stdout


XDIST_TESTS = """
    import json, os, pathlib
    import pytest

    @pytest.mark.parametrize("i", range(4))
    def test_uses_the_cluster(gpu_ray_cluster, i):
        c = gpu_ray_cluster
        record = {
            "worker": os.environ.get("PYTEST_XDIST_WORKER"),
            "pid": os.getpid(),
            "address": c.address,
            "token": c.token,
            "temp_dir": c.temp_dir,
            "namespace": c.namespace,
            "mode": c.mode,
            "requested": c.config.gpus,
            "gpus": sorted(c.gpus_per_node().values()),
        }
        pathlib.Path(f"{os.getpid()}-{i}.record.json").write_text(json.dumps(record))
        result = c.run_initialize_node([])
        assert result.bundles == ({"GPU": 1.0},)
"""


def test_under_xdist_each_worker_gets_its_own_cluster(tmp_path: Path) -> None:
    (tmp_path / "test_parallel.py").write_text(textwrap.dedent(XDIST_TESTS))
    done = run_pytest(
        tmp_path,
        "-n",
        "2",
        "-W",
        "default::pytest_raycallbacks.live.errors.RayAddressIgnoredWarning",
        env=child_env(RAYCALLBACKS_SIMULATE_NODES="1", RAY_ADDRESS="127.0.0.1:1"),
        timeout_s=180,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout
    assert "RayAddressIgnoredWarning" in done.stdout  # said, not silently used
    records = read_records(tmp_path)
    assert len(records) == 4
    by_worker = {r["worker"]: r for r in records}
    assert set(by_worker) == {"gw0", "gw1"}
    for worker, record in by_worker.items():
        assert record["mode"] == "simulate"
        assert record["requested"] == "auto"  # auto became simulate: no GPUs here
        assert record["gpus"] == [1]
        assert worker in record["namespace"]
        assert all(r["address"] == record["address"] for r in records if r["worker"] == worker)
    clusters = list(by_worker.values())
    assert clusters[0]["address"] != clusters[1]["address"]
    assert clusters[0]["temp_dir"] != clusters[1]["temp_dir"]
    for record in clusters:
        assert token_processes(record["token"]) == []
        assert not Path(record["temp_dir"]).exists()


ADDRESS_TESTS = """
    import json, pathlib
    import pytest
    from pytest_raycallbacks.live import ModeError

    def test_address_mode(gpu_ray_cluster):
        c = gpu_ray_cluster
        assert c.mode == "address"
        assert c.token == "" and c.temp_dir is None and c.owned_processes() == []
        assert c.physical is False  # its GPUs are logical: the probe found no device
        ray = c.ray
        group = ray.util.placement_group([{"GPU": 1}], name="child-group")
        assert group.wait(60)

        @ray.remote(num_cpus=0)
        class Keeper:
            def ping(self):
                return 1

        keeper = Keeper.options(name="child-detached", lifetime="detached").remote()
        assert ray.get(keeper.ping.remote(), timeout=60) == 1
        with pytest.raises(ModeError, match="needs a simulated cluster"):
            c.add_node()
        result = c.run_initialize_node([])
        assert result.bundles == ({"GPU": 1.0},)
        pathlib.Path("address.record.json").write_text(json.dumps({
            "group": group.id.hex(),
            "keeper": keeper._actor_id.hex(),
            "address": c.address,
        }))
        # group and keeper are left alive on purpose: closing must remove them.
"""


def test_address_mode_starts_nothing_and_cleans_up_only_its_own(
    cluster: Any, tmp_path: Path
) -> None:
    ray = cluster.ray
    mine = ray.util.placement_group([{"CPU": 0.01}], name="parent-group")
    try:
        cluster.wait_placement_group(mine)
        processes_before = core_processes(cluster)
        (tmp_path / "test_address.py").write_text(textwrap.dedent(ADDRESS_TESTS))
        done = run_pytest(
            tmp_path,
            f"--raycallbacks-ray-address={cluster.address}",
            env=child_env(),
            timeout_s=120,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        (record,) = read_records(tmp_path)
        assert record["address"] == cluster.address
        table = ray.util.placement_group_table()
        assert table[record["group"]]["state"] == "REMOVED"  # the child's: cleaned up
        assert table[mine.id.hex()]["state"] == "CREATED"  # ours: untouched
        from ray._private import state

        assert state.actors(actor_id=record["keeper"])["State"] == "DEAD"
        assert core_processes(cluster) == processes_before  # nothing started or stopped
        assert all(n.alive for n in cluster.nodes())
    finally:
        ray.util.remove_placement_group(mine)


def test_an_unreachable_address_fails_fast_with_the_address(tmp_path: Path) -> None:
    (tmp_path / "test_unreachable.py").write_text("def test_it(gpu_ray_cluster):\n    pass\n")
    done = run_pytest(
        tmp_path, "--raycallbacks-ray-address=127.0.0.1:1", env=child_env(), timeout_s=120
    )
    assert done.returncode == 1
    assert "1 error" in done.stdout
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in done.stdout
