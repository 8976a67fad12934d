"""The live cluster's start and stop steps that need no Ray: sharing GPUs between xdist
workers, refusing physical mode without GPUs, the cluster's folder, node arguments, what a
failed start raises, checking an address, ``RAY_ADDRESS``, and ending our processes.
Fast; not marked ``live``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pytest_raycallbacks.live import driver, local_start, teardown
from pytest_raycallbacks.live.config import SIMULATED_HEALTH_CHECKS, LiveClusterConfig, NodeSpec
from pytest_raycallbacks.live.environment import TOKEN_ENV, XdistWorker
from pytest_raycallbacks.live.errors import (
    ClusterStartError,
    LiveClusterError,
    NoPhysicalGPUError,
    RayAddressIgnoredWarning,
    WaitTimeoutError,
)
from pytest_raycallbacks.live.gpus import GpuDetection, share_for_worker
from pytest_raycallbacks.live.processes import processes_with_token
from pytest_raycallbacks.live.waits import wait_until
from pytest_raycallbacks.live.wording import error_text, short_id

FOUR_GPUS = GpuDetection(("0", "1", "2", "3"), "nvidia-smi", ("nvidia-smi -L: 4 GPU(s)",))

# ---------------------------------------------------------------- GPUs


def test_an_xdist_worker_gets_its_share_and_the_detection_says_so() -> None:
    shared = share_for_worker(FOUR_GPUS, XdistWorker("gw1", 1, 2))
    assert shared.ids == ("1", "3")
    assert shared.source == "nvidia-smi"
    assert shared.tried[-1] == "xdist worker gw1 of 2 gets ['1', '3']"
    assert share_for_worker(FOUR_GPUS, None) is FOUR_GPUS
    nothing = GpuDetection((), "none", ("nvidia-smi: not found on PATH",))
    assert share_for_worker(nothing, XdistWorker("gw0", 0, 2)) is nothing


def test_physical_mode_without_gpus_names_what_was_tried_and_the_way_out() -> None:
    local_start.require_gpus(FOUR_GPUS, None)  # GPUs found: nothing raised
    starved = share_for_worker(GpuDetection(("0",), "nvidia-smi", ()), XdistWorker("gw1", 1, 2))
    with pytest.raises(NoPhysicalGPUError) as caught:
        local_start.require_gpus(starved, XdistWorker("gw1", 1, 2))
    message = str(caught.value)
    assert "xdist worker gw1 of 2 gets []" in message
    assert "at most as many workers as GPUs" in message
    assert "--raycallbacks-gpus=simulate" in message


# ---------------------------------------------------------------- the cluster's folder


def test_the_cluster_folder_is_short_and_holds_rays_folder(tmp_path: Path) -> None:
    path = local_start.make_temp_dir("/tmp", XdistWorker("gw2", 2, 3))
    try:
        assert Path(path).name.startswith("rcb2-")
        assert len(path) <= local_start.MAX_TEMP_DIR_LEN
        assert Path(path, "ray").is_dir()
    finally:
        teardown.remove_folder(path)
    assert not Path(path).exists()
    deep = tmp_path / ("x" * local_start.MAX_TEMP_DIR_LEN)
    deep.mkdir()
    with pytest.raises(ClusterStartError, match="RAYCALLBACKS_RAY_TMPDIR"):
        local_start.make_temp_dir(str(deep), None)
    assert list(deep.iterdir()) == []  # the too-long folder was removed again


def test_the_cluster_module_still_exports_the_folder_bound() -> None:
    from pytest_raycallbacks.live import cluster

    assert cluster.MAX_TEMP_DIR_LEN == local_start.MAX_TEMP_DIR_LEN


# ---------------------------------------------------------------- node arguments


def test_head_arguments_turn_the_dashboard_off_and_speed_up_health_checks() -> None:
    config = LiveClusterConfig(object_store_memory=123)
    spec = NodeSpec(2, 4, {"accelerator_type:A100": 1.0})
    head = local_start.head_node_args(config, spec, mode="simulate", temp_dir="/tmp/rcb-x")
    assert head["include_dashboard"] is False
    assert head["dashboard_port"] is None
    assert head["temp_dir"] == "/tmp/rcb-x"
    assert head["_system_config"] == dict(SIMULATED_HEALTH_CHECKS)
    assert (head["num_gpus"], head["num_cpus"], head["object_store_memory"]) == (2, 4, 123)
    physical = local_start.head_node_args(config, spec, mode="physical", temp_dir="/tmp/r")
    assert "_system_config" not in physical
    own = LiveClusterConfig(system_config={"x": 1})
    assert local_start.head_node_args(own, spec, mode="simulate", temp_dir="/t")[
        "_system_config"
    ] == {"x": 1}
    worker = local_start.node_args(config, spec)
    assert worker == {
        "num_cpus": 4,
        "num_gpus": 2,
        "object_store_memory": 123,
        "resources": {"accelerator_type:A100": 1.0},
    }
    assert "resources" not in local_start.node_args(config, NodeSpec(0, 1))


# ---------------------------------------------------------------- failed starts


def test_a_failed_start_raises_what_says_most() -> None:
    timeout = WaitTimeoutError("the Ray head node to start", 1.0)
    assert local_start.start_failure(timeout, "the simulate Ray cluster", "LOGS") is timeout
    assert "LOGS" in timeout.__notes__
    interrupt = KeyboardInterrupt()
    assert local_start.start_failure(interrupt, "x", "LOGS") is interrupt
    keeper_died = LiveClusterError("the cluster keeper exited")
    wrapped = local_start.start_failure(keeper_died, "the simulate Ray cluster (3 node(s))", "")
    assert isinstance(wrapped, ClusterStartError)
    assert str(wrapped) == (
        "could not start the simulate Ray cluster (3 node(s)): "
        "LiveClusterError: the cluster keeper exited"
    )
    other = local_start.start_failure(OSError("no space"), "the physical Ray cluster", "tail")
    assert str(other).endswith("OSError: no space\ntail")


def test_the_log_tail_shows_the_keeper_and_rays_start_logs(tmp_path: Path) -> None:
    logs = tmp_path / "session_1" / "logs"
    logs.mkdir(parents=True)
    (logs / "gcs_server.err").write_text("line 1\nGCS failed to bind\n")
    (logs / "worker-1.err").write_text("not a start log\n")
    (logs / "raylet.out").write_text("")
    tail = local_start.log_tail(None, str(tmp_path), lines=1)
    assert tail == "--- gcs_server.err (last 1 lines)\nGCS failed to bind"
    assert local_start.log_tail(None, None) == ""


# ---------------------------------------------------------------- the driver


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ray://10.0.0.1:10001", "Ray Client address"),
        ("10.0.0.1", "is not host:port"),
        ("10.0.0.1:port", "is not host:port"),
    ],
)
def test_bad_addresses_are_refused_before_ray_init(address: str, message: str) -> None:
    with pytest.raises(ClusterStartError, match=message):
        driver.check_address(address, timeout_s=1.0)


def test_an_unreachable_address_is_named() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ClusterStartError, match=f"cannot reach the Ray cluster at {address}"):
        driver.check_address(address, timeout_s=2.0)
    driver.check_address("auto", timeout_s=1.0)  # Ray resolves these itself


def test_ray_address_is_taken_warned_about_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    with pytest.warns(RayAddressIgnoredWarning, match="--raycallbacks-ray-address=10.0.0.9"):
        saved, ignored = driver.take_ray_address(None)
    assert (saved, ignored) == ("10.0.0.9:6379", "10.0.0.9:6379")
    assert "RAY_ADDRESS" not in os.environ
    driver.restore_ray_address(saved)
    assert os.environ["RAY_ADDRESS"] == "10.0.0.9:6379"
    saved, ignored = driver.take_ray_address("10.0.0.9:6379")  # the one we use: no warning
    assert (saved, ignored) == ("10.0.0.9:6379", None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert driver.take_ray_address(None) == (None, None)
    driver.restore_ray_address(None)
    assert "RAY_ADDRESS" not in os.environ


# ---------------------------------------------------------------- stopping


def test_processes_carrying_the_token_are_ended_and_no_others() -> None:
    token = uuid.uuid4().hex
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(sleeper, env={**os.environ, TOKEN_ENV: token})
    theirs = subprocess.Popen(sleeper, env={**os.environ, TOKEN_ENV: uuid.uuid4().hex})
    try:
        wait_until(  # the token shows once the child has started Python
            lambda: [p.pid for p in processes_with_token(token)] == [ours.pid],
            what="the child carrying the token to show up",
            timeout_s=30,
        )
        assert teardown.end_token_processes(token) == []
        assert ours.wait(timeout=10) is not None
        assert theirs.poll() is None
        assert teardown.end_token_processes("") == []
    finally:
        for child in (ours, theirs):
            child.kill()
            child.wait(timeout=10)


# ---------------------------------------------------------------- wording


def test_messages_name_nodes_and_errors_the_same_way() -> None:
    assert short_id("1117d2e2ed82" + "a" * 44) == "1117d2e2ed82"
    assert error_text(ValueError("bad\nsecond line")) == "ValueError: bad\nsecond line"
    assert error_text(ValueError("bad\nsecond line"), one_line=True) == "ValueError: bad"
    assert error_text(RuntimeError(), one_line=True) == "RuntimeError: "
