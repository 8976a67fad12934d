"""Topology changes and injected faults: nodes joining and dying, failing and slow tasks,
and what a test can read back (groups, tasks, downloads, calls, leaks)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from pytest_raycallbacks.fake_ray import FakeRayCluster, FakeRayLeakWarning, NodeSpec


@ray.remote(num_cpus=0)
def node_of() -> str:
    return ray.get_runtime_context().get_node_id()


def test_add_and_remove_nodes(fake_ray_cluster: FakeRayCluster) -> None:
    info = fake_ray_cluster.add_node(name="extra", num_cpus=4, num_gpus=2, resources={"fpga": 1})
    assert info.name == "extra" and info.resources["GPU"] == 2.0
    assert ray.cluster_resources()["fpga"] == 1.0
    with pytest.raises(ValueError, match="already exists"):
        fake_ray_cluster.add_node(name="extra")
    fake_ray_cluster.remove_node("extra")
    assert "fpga" not in ray.cluster_resources()
    dead = [n for n in ray.nodes() if not n["Alive"]]
    assert [n["NodeID"] for n in dead] == [info.node_id]
    assert dead[0]["Resources"] == {}
    with pytest.raises(ValueError, match="head node cannot be removed"):
        fake_ray_cluster.remove_node("head")
    default = fake_ray_cluster.add_node()  # a GPU node like the default ones
    assert default.resources["GPU"] == 8.0


def test_node_failure_reschedules_bundles(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 4}, {"GPU": 4}], strategy="STRICT_SPREAD")
    assert pg.wait(1)
    before = fake_ray_cluster.placement_group(pg)
    lost = before.bundle_node_names[1]
    fake_ray_cluster.fail_node(lost)
    after = fake_ray_cluster.placement_group(pg)
    assert after.state == "RESCHEDULING"  # no other node may host that bundle
    assert not pg.wait(5)
    assert ray.nodes()[[n["NodeID"] for n in ray.nodes()].index(before.bundle_nodes[1])][
        "DeathReasonMessage"
    ]
    fake_ray_cluster.add_node(name="replacement")
    assert pg.wait(1)
    assert fake_ray_cluster.placement_group(pg).bundle_node_names[1] == "replacement"
    ray.util.remove_placement_group(pg)


def test_node_failure_moves_bundle_to_a_node_with_room(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 2}, {"GPU": 2}], strategy="PACK")
    assert fake_ray_cluster.placement_group(pg).bundle_node_names == ("gpu-0", "gpu-0")
    fake_ray_cluster.remove_node("gpu-0")
    assert pg.wait(1)
    assert fake_ray_cluster.placement_group(pg).bundle_node_names == ("gpu-1", "gpu-1")
    ray.util.remove_placement_group(pg)


_release = threading.Event()
_started = threading.Semaphore(0)


@ray.remote(num_gpus=1, num_cpus=0)
def long_running() -> str:
    """Reads module-level events: Ray (and the fake) could not pickle this function, so
    the test runs it with ``serialize=False``."""
    _started.release()
    _release.wait(10)
    return ray.get_runtime_context().get_node_id()


@pytest.mark.fake_ray_cluster(serialize=False)
def test_tasks_on_a_dying_node_are_retried_or_fail(fake_ray_cluster: FakeRayCluster) -> None:
    _release.clear()
    gpu0 = fake_ray_cluster.node("gpu-0").node_id
    soft = NodeAffinitySchedulingStrategy(gpu0, soft=True)
    retried = long_running.options(scheduling_strategy=soft).remote()
    no_retry = long_running.options(max_retries=0, scheduling_strategy=soft).remote()
    assert _started.acquire(timeout=5) and _started.acquire(timeout=5)
    fake_ray_cluster.fail_node("gpu-0")
    _release.set()  # the abandoned first runs finish; their results are ignored
    assert ray.get(retried, timeout=10) == fake_ray_cluster.node("gpu-1").node_id
    with pytest.raises(ray.exceptions.NodeDiedError, match="died"):
        ray.get(no_retry, timeout=10)
    record = fake_ray_cluster.tasks_of(long_running._function)[0]
    assert record.attempts == 2 and record.node_name == "gpu-1"


def test_hard_affinity_to_a_dead_node_is_unschedulable(fake_ray_cluster: FakeRayCluster) -> None:
    gpu1 = fake_ray_cluster.node("gpu-1").node_id
    fake_ray_cluster.remove_node("gpu-1")
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(
            node_of.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(gpu1, soft=False)
            ).remote()
        )


def test_actor_on_a_failed_node_dies(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote(num_gpus=8)
    class Holder:
        def ping(self) -> str:
            return "pong"

    holder = Holder.remote()
    assert ray.get(holder.ping.remote()) == "pong"
    node = next(t.node_name for t in fake_ray_cluster.tasks if t.kind == "actor_creation")
    fake_ray_cluster.fail_node(node)
    with pytest.raises(ray.exceptions.ActorDiedError, match="died"):
        ray.get(holder.ping.remote())
    assert ray.available_resources()["GPU"] == 8.0  # the surviving node is whole again


def test_failing_and_slow_task_faults(fake_ray_cluster: FakeRayCluster) -> None:
    fault = fake_ray_cluster.fail_task(OSError("disk full"), name="writer", node="gpu-1", times=1)
    gpu1 = fake_ray_cluster.node("gpu-1").node_id
    pinned = node_of.options(
        name="writer", scheduling_strategy=NodeAffinitySchedulingStrategy(gpu1, soft=False)
    )
    with pytest.raises(OSError, match="disk full"):
        ray.get(pinned.remote())
    assert ray.get(pinned.remote()) == gpu1  # times=1: only the first run failed
    assert fault.fired == 1
    assert ray.get(node_of.options(name="other").remote())
    fake_ray_cluster.fail_task(KeyError, function="node_of")
    with pytest.raises(KeyError):
        ray.get(node_of.remote())
    fake_ray_cluster.clear_faults()
    fake_ray_cluster.slow_task(10.0, function="node_of")
    ref = node_of.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=5)
    ready, _ = ray.wait([ref], timeout=20)
    assert ready == [ref]


def test_introspection_records(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 2}], name="records")
    ray.get(
        node_of.options(
            num_gpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)
        ).remote()
    )
    group = fake_ray_cluster.placement_groups[0]
    assert (group.name, group.strategy, group.state, group.creator) == (
        "records",
        "PACK",
        "CREATED",
        "driver",
    )
    assert group.bundles == ({"GPU": 2.0},)
    task = fake_ray_cluster.tasks[0]
    assert task.function.endswith("node_of")
    assert task.options["num_gpus"] == 1
    assert task.resources == {"GPU": 1.0}
    assert task.placement_group == pg.id.hex()
    assert task.gpu_ids == (0,)
    assert task.node_name == group.bundle_node_names[0]
    assert task.state == "FINISHED"
    leaks = fake_ray_cluster.leaks()
    assert [g.name for g in leaks.placement_groups] == ["records"]
    assert "records" in leaks.describe()
    ray.util.remove_placement_group(pg)
    assert not fake_ray_cluster.leaks()
    assert [g.name for g in fake_ray_cluster.removed_placement_groups] == ["records"]


def test_leak_report_at_teardown() -> None:
    with FakeRayCluster() as cluster:
        ray.util.placement_group([{"GPU": 1}])
    report = cluster.leak_report
    assert report is not None and len(report.placement_groups) == 1
    assert "was never removed" in report.describe()


LEAKY = """
import pytest, ray

@pytest.mark.fake_ray_cluster(leaks={policy!r})
def test_leaks(fake_ray_cluster):
    ray.util.placement_group([{{"GPU": 1}}])
"""


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        ("warn", pytest.ExitCode.OK),
        ("fail", pytest.ExitCode.TESTS_FAILED),
        ("ignore", pytest.ExitCode.OK),
    ],
)
def test_leak_policies(tmp_path: Path, policy: str, outcome: Any) -> None:
    path = tmp_path / f"test_leaky_{policy}.py"  # a distinct module name per run
    path.write_text(LEAKY.format(policy=policy))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = pytest.main(
            [
                str(path),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:hypothesispytest",
                "-p",
                "no:asyncio",
            ]
        )
    assert code == outcome


def test_marker_rejects_unknown_options(tmp_path: Path) -> None:
    (tmp_path / "test_bad_marker.py").write_text(
        "import pytest\n"
        "@pytest.mark.fake_ray_cluster(gpus=3)\n"
        "def test_x(fake_ray_cluster):\n"
        "    pass\n"
    )
    code = pytest.main(
        [
            str(tmp_path / "test_bad_marker.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-p",
            "no:asyncio",
        ]
    )
    assert code != pytest.ExitCode.OK


def test_leak_warning_category() -> None:
    assert issubclass(FakeRayLeakWarning, UserWarning)


def test_node_spec_validation() -> None:
    with pytest.raises(ValueError, match="num_gpus"):
        NodeSpec(num_gpus=-1)
    with pytest.raises(ValueError, match="must not hold 'GPU'"):
        NodeSpec(resources={"GPU": 1})
    with pytest.raises(TypeError, match="unknown NodeSpec fields"):
        NodeSpec.coerce({"gpus": 1})
    with pytest.raises(ValueError, match="only one node may say head=True"):
        FakeRayCluster([{"head": True}, {"head": True}])
