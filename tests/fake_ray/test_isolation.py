"""The fake cluster is isolated: no Ray process, no port, no real Ray call; every name it
rebinds comes back as the very same object, however the test ends."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.util
from ray.remote_function import RemoteFunction
from ray.util.placement_group import placement_group as pg_function_at_import

from pytest_raycallbacks.fake_ray import (
    FakeRayActivationError,
    FakeRayCluster,
    FakeRayUnsupported,
    active,
    patching,
)

ROOT = Path(__file__).resolve().parents[2]

PG_MODULE = sys.modules["ray.util.placement_group"]
#: Held in a list: names in module namespaces (like ``pg_function_at_import`` above) are
#: themselves rebound while a fake is active, values inside containers are not.
ORIGINAL = {"placement_group": pg_function_at_import, "get": ray.get}


def _targets_snapshot() -> dict[tuple[str, str], int]:
    """(module, name) -> id(value) for every module-level binding of a routed function,
    plus the routed class attributes."""
    patching.activate  # noqa: B018 - make sure the module is imported
    originals = {}
    for target in patching.targets():
        if ":" in target.owner:
            module_name, cls_name = target.owner.split(":")
            cls = getattr(sys.modules[module_name], cls_name)
            originals[id(cls.__dict__[target.attr])] = cls.__dict__[target.attr]
        else:
            module = sys.modules.get(target.owner)
            value = getattr(module, target.attr, None)
            if value is not None:
                originals[id(value)] = value
    snapshot: dict[tuple[str, str], int] = {}
    for name, module in list(sys.modules.items()):
        namespace = (
            getattr(module, "__dict__", None) if isinstance(module, types.ModuleType) else None
        )
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if id(value) in originals and originals[id(value)] is value:
                snapshot[(name, attr)] = id(value)
    snapshot[("RemoteFunction", "_remote")] = id(RemoteFunction.__dict__["_remote"])
    snapshot[("ActorClass", "_remote")] = id(ray.actor.ActorClass.__dict__["_remote"])
    return snapshot


@pytest.fixture
def early_module(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A user module that bound Ray's API in every usual way before any fake started."""
    (tmp_path / "early_user_module.py").write_text(
        textwrap.dedent(
            """
            import ray
            import ray.util
            from ray import get as ray_get
            from ray.util import placement_group as pg_from_util
            from ray.util.placement_group import placement_group as pg_from_module
            from ray.util.placement_group import remove_placement_group

            @ray.remote(num_cpus=0)
            def early_task():
                return ray.get_runtime_context().get_node_id()

            def make_group():
                return ray.util.placement_group([{"GPU": 1}])
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("early_user_module")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("early_user_module", None)


def test_names_bound_before_the_fake_reach_it_and_come_back(early_module: Any) -> None:
    originals = {
        "ray_get": early_module.ray_get,
        "pg_from_util": early_module.pg_from_util,
        "pg_from_module": early_module.pg_from_module,
        "remove_placement_group": early_module.remove_placement_group,
    }
    assert originals["pg_from_util"] is originals["pg_from_module"] is ORIGINAL["placement_group"]
    with FakeRayCluster() as cluster:
        for name, original in originals.items():
            assert getattr(early_module, name) is not original, name
        groups = [
            early_module.pg_from_util([{"GPU": 1}]),
            early_module.pg_from_module([{"GPU": 1}]),
            early_module.make_group(),
        ]
        assert len(cluster.placement_groups) == 3
        assert all(g.wait(1) for g in groups)
        node = early_module.ray_get(early_module.early_task.remote())
        assert node == cluster.head.node_id
        for g in groups:
            early_module.remove_placement_group(g)
    for name, original in originals.items():
        assert getattr(early_module, name) is original, name


def test_every_patched_name_is_restored_by_identity(early_module: Any) -> None:
    before = _targets_snapshot()
    assert ("early_user_module", "pg_from_module") in before
    assert ("ray.util", "placement_group") in before
    with FakeRayCluster():
        during = _targets_snapshot()
        assert not (set(before.items()) & set(during.items())), "some names were not routed"
    after = _targets_snapshot()
    assert after == before
    assert ray.util.placement_group is ORIGINAL["placement_group"]
    assert PG_MODULE.placement_group is ORIGINAL["placement_group"]


def test_module_imported_while_active_is_restored_too(tmp_path: Path) -> None:
    (tmp_path / "late_user_module.py").write_text(
        "from ray.util import placement_group\nfrom ray import get\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        with FakeRayCluster():
            late = importlib.import_module("late_user_module")
            assert late.placement_group is not ORIGINAL["placement_group"]  # the fake's
        assert late.placement_group is ORIGINAL["placement_group"]
        assert late.get is ORIGINAL["get"]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_user_module", None)


def test_restored_when_the_with_block_raises() -> None:
    before = _targets_snapshot()

    def crash() -> None:
        with FakeRayCluster():
            ray.util.placement_group([{"GPU": 1}])
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        crash()
    assert _targets_snapshot() == before
    with pytest.raises(KeyboardInterrupt), FakeRayCluster():
        raise KeyboardInterrupt
    assert _targets_snapshot() == before
    assert not active.is_active()


INNER_TESTS = """
import pytest
import ray

def test_fails(fake_ray_cluster):
    ray.util.placement_group([{"GPU": 1}])
    assert False, "this test fails on purpose"

def test_errors_in_teardown_path(fake_ray_cluster):
    raise RuntimeError("boom")

def test_interrupted(fake_ray_cluster):
    ray.util.placement_group([{"GPU": 1}])
    raise KeyboardInterrupt
"""


def test_restored_after_a_failing_and_an_interrupted_test(tmp_path: Path) -> None:
    before = _targets_snapshot()
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    code = pytest.main(
        [
            str(tmp_path / "test_inner.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-p",
            "no:asyncio",
            "-W",
            "ignore",
        ]
    )
    assert code == pytest.ExitCode.INTERRUPTED
    assert _targets_snapshot() == before
    assert not active.is_active()
    assert ray.util.placement_group is ORIGINAL["placement_group"]


def test_only_one_fake_cluster_at_a_time() -> None:
    with FakeRayCluster(), pytest.raises(FakeRayActivationError, match="already active"):
        FakeRayCluster().start()
    assert not active.is_active()


def test_dispatchers_left_behind_delegate_to_real_ray() -> None:
    real_is_initialized = ray.is_initialized
    was = real_is_initialized()
    with FakeRayCluster():
        captured = ray.is_initialized  # a reference kept past the fake's life
        assert captured() is True
    assert captured is not real_is_initialized
    assert captured() is was  # inactive: the original answers


@pytest.mark.parametrize(
    ("call", "api"),
    [
        (lambda: ray.timeline(), "ray.timeline"),
        (lambda: ray.util.get_node_instance_id(), "ray.util.get_node_instance_id"),
        (lambda: __import__("ray.util.state").util.state.list_nodes(), "ray.util.state.list_nodes"),
        (
            lambda: __import__("ray.autoscaler.sdk").autoscaler.sdk.request_resources(num_cpus=1),
            "ray.autoscaler.sdk.request_resources",
        ),
        (lambda: ray.init(num_gpus=4), "ray.init(num_gpus=...)"),
        (lambda: ray.get_runtime_context().get_actor_handle(), "ray.get_runtime_context()"),
    ],
)
def test_unmodelled_functions_refuse_loudly(call: Any, api: str) -> None:
    with FakeRayCluster() as cluster:
        with pytest.raises(FakeRayUnsupported) as info:
            call()
        message = str(info.value)
        assert api in message
        assert "gpu_ray_cluster" in message
        assert "--raycallbacks-cluster live" in message
        assert cluster.calls[-1].error is not None or "get_runtime_context" in api


def test_importing_the_fixture_module_does_not_import_ray() -> None:
    code = (
        "import sys, pytest_raycallbacks.fake_ray.fixture, pytest_raycallbacks.fake_ray; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


NO_PROCESS_SCRIPT = r"""
import asyncio, json, os, sys

def children():
    me, found = os.getpid(), set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.add(int(pid))
    return sorted(found)

def my_sockets():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.append(target)
    return sorted(out)

def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(ports)

import ray
REAL = [ray.is_initialized]  # in a list: module-level names are rebound while the fake runs
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy as PGS
from reference_runner import LLMConfig, TINY_MODEL_PATH, initialize_node
from pytest_raycallbacks.fake_ray import FakeRayCluster

state = {"before": (children(), my_sockets(), listening_ports())}
with FakeRayCluster() as cluster:
    config = LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 2})
    out = asyncio.run(initialize_node(config))
    pg = out.placement_group
    @ray.remote
    def f(x):
        return x + 1
    refs = [f.options(num_gpus=1, num_cpus=0, scheduling_strategy=PGS(pg, i)).remote(i)
            for i in range(2)]
    assert ray.get(refs) == [1, 2]
    ray.util.remove_placement_group(pg)
    state["during"] = (children(), my_sockets(), listening_ports())
    state["fake_initialized"] = ray.is_initialized()
    state["real_initialized_during"] = REAL[0]()
state["after"] = (children(), my_sockets(), listening_ports())
state["real_initialized_after"] = ray.is_initialized()
state["ray_tmpdir"] = sorted(os.listdir(os.environ["RAY_TMPDIR"]))
print(json.dumps(state))
"""


def test_no_ray_process_or_port_is_opened(tmp_path: Path) -> None:
    ray_tmp = tmp_path / "ray-tmp"
    ray_tmp.mkdir()
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-c", NO_PROCESS_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state["before"] == state["during"] == state["after"]
    assert state["during"][0] == [], "the fake started a child process"
    assert state["real_initialized_during"] is False
    assert state["real_initialized_after"] is False
    assert state["fake_initialized"] is True
    assert state["ray_tmpdir"] == [], "a Ray session directory was created"


def test_task_environment_stays_in_the_task() -> None:
    data_before = os.environ._data  # type: ignore[attr-defined]

    @ray.remote(num_cpus=0)
    def writes_env() -> tuple[str | None, str | None]:
        os.environ["RAYCALLBACKS_TASK_ONLY"] = "1"
        return os.environ.get("RAYCALLBACKS_TASK_ONLY"), os.environ.get("CUDA_VISIBLE_DEVICES")

    with FakeRayCluster():
        seen, cvd = ray.get(writes_env.options(num_gpus=2).remote())
        assert seen == "1"
        assert cvd == "0,1"
        assert "RAYCALLBACKS_TASK_ONLY" not in os.environ
        os.environ["RAYCALLBACKS_DRIVER_SET"] = "yes"
    try:
        assert os.environ._data is data_before  # type: ignore[attr-defined]
        assert type(os.environ._data) is dict  # type: ignore[attr-defined]
        assert os.environ["RAYCALLBACKS_DRIVER_SET"] == "yes"
    finally:
        os.environ.pop("RAYCALLBACKS_DRIVER_SET", None)
