"""The live cluster's pure parts, without Ray: configuration, GPU detection, environment,
process scanning, bounded waits, errors. Fast; not marked ``live``."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_raycallbacks.live.config import (
    DEFAULT_SIMULATED_NODES,
    LiveClusterConfig,
    NodeSpec,
    config_from_env,
    parse_topology,
)
from pytest_raycallbacks.live.environment import (
    TOKEN_ENV,
    apply_changes,
    node_environment,
    shippable_sys_path,
    xdist_worker,
)
from pytest_raycallbacks.live.errors import (
    ClusterImportError,
    LeakError,
    NotShippableError,
    WaitTimeoutError,
)
from pytest_raycallbacks.live.gpus import detect_physical_gpus, partition_gpus
from pytest_raycallbacks.live.processes import processes_with_token
from pytest_raycallbacks.live.waits import wait_until
from reference_runner import CallbackLoadError

# ---------------------------------------------------------------- configuration


def test_default_topology_is_a_head_plus_two_nodes_of_two_gpus() -> None:
    expected = (NodeSpec(0, 2), NodeSpec(2, 2, {"accelerator_type:A100": 1.0}), NodeSpec(2, 2))
    assert expected == DEFAULT_SIMULATED_NODES
    assert parse_topology("0:2,2:2:A100,2:2") == DEFAULT_SIMULATED_NODES
    assert LiveClusterConfig().nodes == DEFAULT_SIMULATED_NODES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,2,2", (NodeSpec(0, 1), NodeSpec(2, 2), NodeSpec(2, 2))),
        ("2", (NodeSpec(2, 1),)),
        ("0:1, 4:8", (NodeSpec(0, 1), NodeSpec(4, 8))),
        ("1,0", (NodeSpec(1, 1), NodeSpec(0, 1))),
        ("0,4:8:H100", (NodeSpec(0, 1), NodeSpec(4, 8, {"accelerator_type:H100": 1.0}))),
    ],
)
def test_parse_topology(text: str, expected: tuple[NodeSpec, ...]) -> None:
    assert parse_topology(text) == expected


@pytest.mark.parametrize("text", ["", "a", "0,,2", "2:x", "-1", "0:-2", "1:1:A:B"])
def test_parse_topology_rejects_bad_text_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match="RAYCALLBACKS_SIMULATE_NODES"):
        parse_topology(text)


def test_config_from_env_reads_the_documented_variables() -> None:
    config = config_from_env(
        {
            "RAYCALLBACKS_SIMULATE_NODES": "1,1",
            "RAYCALLBACKS_RUNTIME_ENV": '{"working_dir": "."}',
            "RAYCALLBACKS_RAY_TMPDIR": "/tmp/x",
            "RAYCALLBACKS_LIVE_START_TIMEOUT": "7.5",
        },
        gpus="simulate",
    )
    assert config.nodes == (NodeSpec(1, 1), NodeSpec(1, 1))
    assert config.runtime_env == {"working_dir": "."}
    assert config.tmp_root == "/tmp/x"
    assert config.start_timeout_s == 7.5
    assert config.wanted_mode == "simulate"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAYCALLBACKS_RUNTIME_ENV": "{nope"}, "not valid JSON"),
        ({"RAYCALLBACKS_RUNTIME_ENV": "[1]"}, "must be a JSON object"),
        ({"RAYCALLBACKS_LIVE_START_TIMEOUT": "soon"}, "not a number"),
    ],
)
def test_config_from_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_env(env)


def test_an_address_selects_address_mode_and_bad_values_are_refused() -> None:
    assert LiveClusterConfig(address="10.0.0.1:6379", gpus="simulate").wanted_mode == "address"
    assert LiveClusterConfig(gpus="auto").wanted_mode == "auto"
    with pytest.raises(ValueError, match="gpus must be one of"):
        LiveClusterConfig(gpus="many")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start_timeout_s"):
        LiveClusterConfig(start_timeout_s=0)


# ---------------------------------------------------------------- GPU detection

SMI = "GPU 0: NVIDIA H100 (UUID: GPU-aaa)\nGPU 1: NVIDIA H100 (UUID: GPU-bbb)\n"


def fake_smi(output: str):  # type: ignore[no-untyped-def]
    return lambda argv: output


def test_nvidia_smi_gpus_are_found(tmp_path: Path) -> None:
    found = detect_physical_gpus(
        {}, run=fake_smi(SMI), which=lambda _: "/usr/bin/nvidia-smi", proc_gpus=str(tmp_path / "x")
    )
    assert found.ids == ("0", "1")
    assert found.source == "nvidia-smi"


def test_cuda_visible_devices_narrows_but_never_invents_gpus(tmp_path: Path) -> None:
    kwargs = {"which": lambda _: "/usr/bin/nvidia-smi", "proc_gpus": str(tmp_path / "x")}
    narrowed = detect_physical_gpus({"CUDA_VISIBLE_DEVICES": "1"}, run=fake_smi(SMI), **kwargs)
    assert narrowed.ids == ("1",)
    by_uuid = detect_physical_gpus({"CUDA_VISIBLE_DEVICES": "GPU-bbb"}, run=fake_smi(SMI), **kwargs)
    assert by_uuid.ids == ("GPU-bbb",)
    hidden = detect_physical_gpus({"CUDA_VISIBLE_DEVICES": ""}, run=fake_smi(SMI), **kwargs)
    assert hidden.count == 0
    assert "hides every GPU" in hidden.explain()
    # A CUDA_VISIBLE_DEVICES on a machine without GPUs is not a GPU.
    none = detect_physical_gpus(
        {"CUDA_VISIBLE_DEVICES": "0,1"}, which=lambda _: None, proc_gpus=str(tmp_path / "x")
    )
    assert none.count == 0


def test_proc_driver_is_the_fallback_and_failures_are_explained(tmp_path: Path) -> None:
    gpus = tmp_path / "gpus"
    for bus in ("0000:01:00.0", "0000:02:00.0", "0000:03:00.0"):
        (gpus / bus).mkdir(parents=True)

    def broken(argv: object) -> str:
        raise subprocess.CalledProcessError(9, "nvidia-smi", "NVIDIA-SMI has failed")

    found = detect_physical_gpus(
        {}, run=broken, which=lambda _: "/x/nvidia-smi", proc_gpus=str(gpus)
    )
    assert found.count == 3
    assert found.source == str(gpus)
    assert "nvidia-smi -L failed" in found.explain()
    nothing = detect_physical_gpus({}, which=lambda _: None, proc_gpus=str(tmp_path / "none"))
    assert nothing.count == 0
    assert "not found on PATH" in nothing.explain()
    assert "does not exist" in nothing.explain()


def test_xdist_workers_get_disjoint_gpus() -> None:
    ids = ("0", "1", "2", "3", "4")
    parts = [partition_gpus(ids, k, 2) for k in range(2)]
    assert parts == [("0", "2", "4"), ("1", "3")]
    assert partition_gpus(("0",), 1, 2) == ()
    with pytest.raises(ValueError, match="bad worker"):
        partition_gpus(ids, 2, 2)


# ---------------------------------------------------------------- environment


def test_xdist_worker_identity() -> None:
    assert xdist_worker({}) is None
    worker = xdist_worker({"PYTEST_XDIST_WORKER": "gw3", "PYTEST_XDIST_WORKER_COUNT": "4"})
    assert worker is not None
    assert (worker.name, worker.index, worker.count) == ("gw3", 3, 4)


def test_node_environment_in_simulate_mode(tmp_path: Path) -> None:
    env = {"RAY_ADDRESS": "10.0.0.1:6379", "CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": "/opt/x"}
    changes = node_environment(
        token="tok", ray_tmpdir="/tmp/rcb-x", simulate=True, sys_path=[str(tmp_path)], env=env
    )
    assert changes["RAY_ADDRESS"] is None
    assert changes["CUDA_VISIBLE_DEVICES"] is None
    assert changes["RAY_TMPDIR"] == "/tmp/rcb-x"
    assert changes[TOKEN_ENV] == "tok"
    assert changes["RAY_USAGE_STATS_ENABLED"] == "0"
    assert changes["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/opt/x"])


def test_node_environment_in_physical_mode_lists_the_devices() -> None:
    changes = node_environment(
        token="t", ray_tmpdir="/tmp/r", simulate=False, cuda_visible_devices=("1", "3")
    )
    assert changes["CUDA_VISIBLE_DEVICES"] == "1,3"


def test_shippable_sys_path_keeps_user_folders_only(tmp_path: Path) -> None:
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    purelib = sysconfig.get_paths()["purelib"]
    system = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    system.mkdir(parents=True)
    entries = shippable_sys_path(
        [str(tmp_path), stdlib, purelib, str(system), str(tmp_path), str(tmp_path / "nope"), ""]
    )
    assert entries == [str(tmp_path), os.getcwd()]


def test_apply_changes_copies_and_removes() -> None:
    env = {"KEEP": "1", "DROP": "2"}
    assert apply_changes(env, {"DROP": None, "NEW": "3"}) == {"KEEP": "1", "NEW": "3"}
    assert env == {"KEEP": "1", "DROP": "2"}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="scans /proc")
def test_processes_are_found_by_token_only() -> None:
    token = "unit-" + os.urandom(4).hex()
    env = {**os.environ, TOKEN_ENV: token}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        found = wait_until(
            lambda: processes_with_token(token), what="the child to start", timeout_s=10
        )
        assert [p.pid for p in found] == [proc.pid]
    finally:
        proc.kill()
        other.kill()
        proc.wait()
        other.wait()
    assert processes_with_token(token) == []


# ---------------------------------------------------------------- bounded waits


def test_wait_until_names_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match="waiting for the moon: still dark") as info:
        wait_until(lambda: False, what="the moon", timeout_s=0.2, detail=lambda: "still dark")
    assert time.monotonic() - started < 2
    assert isinstance(info.value, TimeoutError)
    assert info.value.what == "the moon"


# ---------------------------------------------------------------- errors


def test_errors_survive_pickling_with_their_attributes_and_notes() -> None:
    errors: list[BaseException] = [
        WaitTimeoutError("x", 1.5, "seen"),
        NotShippableError("m", stage="unpickle", cause="ModuleNotFoundError"),
        ClusterImportError("pkg.mod:cb", "it loads in this driver but not on the cluster"),
        LeakError("leaked", leaks=("pg",)),
    ]
    for error in errors:
        error.add_note("a note")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
    assert isinstance(errors[2], CallbackLoadError)
    assert isinstance(errors[2], ImportError)


def test_importing_the_plugin_imports_neither_ray_nor_the_cluster_code() -> None:
    code = (
        "import sys, pytest_raycallbacks.plugin; "
        "print(sorted(m for m in ('ray', 'pydantic', 'pytest_raycallbacks.live.cluster') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
