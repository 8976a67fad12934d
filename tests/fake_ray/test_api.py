"""Ray's API as the fake serves it: placement groups, tasks, objects, actors, context.

Everything here runs in memory on the default topology (a CPU head and two nodes of 8 GPUs)
unless a test's marker says otherwise.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest
import ray
from ray.util.placement_group import PlacementGroup
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from pytest_raycallbacks.fake_ray import FakeRayCluster, FakeRayDeadlockError, FakeRayUnsupported


class BoomError(Exception):
    pass


@ray.remote
def where() -> dict[str, Any]:
    ctx = ray.get_runtime_context()
    return {
        "node": ctx.get_node_id(),
        "gpus": ray.get_gpu_ids(),
        "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pg": ctx.get_placement_group_id(),
    }


@ray.remote
def boom(message: str) -> None:
    raise BoomError(message)


def strategy(pg: PlacementGroup, index: int = -1) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(pg, index)


# ---------------------------------------------------------------------- cluster state


def test_default_topology(fake_ray_cluster: FakeRayCluster) -> None:
    assert ray.is_initialized()
    nodes = ray.nodes()
    assert [n["Alive"] for n in nodes] == [True, True, True]
    head = nodes[0]
    assert "node:__internal_head__" in head["Resources"]
    assert "GPU" not in head["Resources"]
    assert [n["Resources"].get("GPU") for n in nodes[1:]] == [8.0, 8.0]
    assert nodes[1]["Labels"]["ray.io/accelerator-type"] == "A100"
    assert nodes[1]["Labels"]["ray.io/node-id"] == nodes[1]["NodeID"]
    total = ray.cluster_resources()
    assert total["GPU"] == 16.0
    assert total["CPU"] == 8 + 64 + 64
    assert total["accelerator_type:A100"] == 2.0
    assert ray.available_resources()["GPU"] == 16.0
    assert ray.get_runtime_context().get_node_id() == fake_ray_cluster.head.node_id
    assert [n.name for n in fake_ray_cluster.nodes] == ["head", "gpu-0", "gpu-1"]


@pytest.mark.fake_ray_cluster(gpu_nodes=3, gpus_per_node=4, accelerator_type="H100", head_cpus=2)
def test_marker_shapes_the_cluster(fake_ray_cluster: FakeRayCluster) -> None:
    total = ray.cluster_resources()
    assert total["GPU"] == 12.0
    assert total["accelerator_type:H100"] == 3.0
    assert ray.nodes()[0]["Resources"]["CPU"] == 2.0


@pytest.mark.fake_ray_cluster(
    [
        {"num_cpus": 4},
        {"name": "big", "num_gpus": 2, "resources": {"special": 3}, "labels": {"zone": "a"}},
    ]
)
def test_marker_with_explicit_nodes(fake_ray_cluster: FakeRayCluster) -> None:
    assert [n.name for n in fake_ray_cluster.nodes] == ["head", "big"]
    assert fake_ray_cluster.node("big").resources["special"] == 3.0
    assert fake_ray_cluster.node("big").labels["zone"] == "a"
    pg = ray.util.placement_group([{"CPU": 1}], bundle_label_selector=[{"zone": "a"}])
    assert pg.wait(1)
    assert fake_ray_cluster.placement_group(pg).bundle_node_names == ("big",)
    ray.util.remove_placement_group(pg)


# ---------------------------------------------------------------------- placement groups


@pytest.mark.parametrize(
    ("bundles", "strategy_name", "nodes"),
    [
        ([{"GPU": 1}] * 8, "PACK", 1),
        ([{"GPU": 1}] * 9, "PACK", 2),
        ([{"GPU": 1}] * 2, "SPREAD", 2),
        ([{"GPU": 1}] * 3, "SPREAD", 2),
        ([{"CPU": 1}] * 3, "SPREAD", 3),
        ([{"GPU": 1}] * 2, "STRICT_SPREAD", 2),
        ([{"GPU": 4}, {"GPU": 4}], "STRICT_PACK", 1),
        ([{"GPU": 8}, {"CPU": 8}], "STRICT_PACK", 1),
    ],
)
def test_strategies_place_groups(
    fake_ray_cluster: FakeRayCluster,
    bundles: list[dict[str, float]],
    strategy_name: str,
    nodes: int,
) -> None:
    pg = ray.util.placement_group(bundles, strategy=strategy_name)
    assert pg.wait(1)
    assert isinstance(ray.get(pg.ready()), PlacementGroup)
    table = ray.util.placement_group_table(pg)
    assert table["state"] == "CREATED"
    assert table["strategy"] == strategy_name
    assert len(set(table["bundles_to_node_id"].values())) == nodes
    assert pg.bundle_specs == [{k: float(v) for k, v in b.items()} for b in bundles]
    assert pg.bundle_count == len(bundles)
    ray.util.remove_placement_group(pg)


def test_bundles_get_gpu_devices_in_bundle_order(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group(
        [{"GPU": 1}, {"GPU": 1, "CPU": 1}, {"GPU": 2}], strategy="STRICT_PACK"
    )
    infos = ray.get(
        [
            where.options(num_gpus=g, num_cpus=0, scheduling_strategy=strategy(pg, i)).remote()
            for i, g in enumerate([1, 1, 2])
        ]
    )
    assert [i["gpus"] for i in infos] == [[0], [1], [2, 3]]
    assert [i["cvd"] for i in infos] == ["0", "1", "2,3"]
    assert {i["pg"] for i in infos} == {pg.id.hex()}
    node = ray.util.placement_group_table(pg)["bundles_to_node_id"][0]
    assert {i["node"] for i in infos} == {node}
    ray.util.remove_placement_group(pg)


def test_resource_accounting_and_group_resources(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 2, "CPU": 1}], strategy="PACK")
    pg.wait(1)
    avail = ray.available_resources()
    total = ray.cluster_resources()
    h = pg.id.hex()
    assert avail["GPU"] == 14.0
    assert total["GPU"] == 16.0
    assert total[f"GPU_group_{h}"] == 2.0
    assert total[f"GPU_group_0_{h}"] == 2.0
    assert total[f"bundle_group_{h}"] == 1000.0
    ref = where.options(num_gpus=1, num_cpus=1, scheduling_strategy=strategy(pg, 0)).remote()
    ray.get(ref)
    assert ray.available_resources()[f"GPU_group_0_{h}"] == 2.0  # the task gave it back
    ray.util.remove_placement_group(pg)
    assert ray.available_resources()["GPU"] == 16.0
    assert not any(h in k for k in ray.cluster_resources())


def test_accelerator_type_bundles(fake_ray_cluster: FakeRayCluster) -> None:
    fake_ray_cluster.add_node(name="h100", num_gpus=8, accelerator_type="H100")
    pg = ray.util.placement_group([{"GPU": 1, "accelerator_type:H100": 0.001}] * 2)
    assert pg.wait(1)
    assert fake_ray_cluster.placement_group(pg).bundle_node_names == ("h100", "h100")
    assert ray.available_resources()["accelerator_type:H100"] == pytest.approx(0.998)
    missing = ray.util.placement_group([{"GPU": 1, "accelerator_type:B200": 0.001}])
    assert not missing.wait(5)
    assert ray.util.placement_group_table(missing)["stats"]["scheduling_state"] == "INFEASIBLE"
    for g in (pg, missing):
        ray.util.remove_placement_group(g)


def test_validation_uses_rays_rules(fake_ray_cluster: FakeRayCluster) -> None:
    with pytest.raises(ValueError, match="Bundles cannot be an empty dictionary"):
        ray.util.placement_group([{"GPU": 0}])
    with pytest.raises(ValueError, match="Invalid placement group strategy"):
        ray.util.placement_group([{"GPU": 1}], strategy="TIGHT")
    with pytest.raises(ValueError, match="must be a list"):
        ray.util.placement_group({"GPU": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lifetime"):
        ray.util.placement_group([{"GPU": 1}], lifetime="forever")
    with pytest.raises(ValueError, match="Invalid label selector"):
        ray.util.placement_group([{"GPU": 1}], bundle_label_selector=[{"bad key!": "v"}])
    with pytest.warns(DeprecationWarning, match="object_store_memory"):
        ray.util.remove_placement_group(
            ray.util.placement_group([{"CPU": 1, "object_store_memory": 1}])
        )
    assert fake_ray_cluster.live_placement_groups == []


def test_infeasible_group_pending_times_out_and_names_resources(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    pg = ray.util.placement_group([{"GPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert pg.wait(3600) is False  # nothing can change: the clock jumps, no hour is spent
    assert fake_ray_cluster.clock_skipped_s > 3599
    with pytest.raises(ray.exceptions.GetTimeoutError, match="Get timed out"):
        ray.get(pg.ready(), timeout=60)
    ready, not_ready = ray.wait([pg.ready()], timeout=5)
    assert ready == [] and len(not_ready) == 1
    table = ray.util.placement_group_table(pg)
    assert table["state"] == "PENDING"
    assert table["bundles_to_node_id"] == {0: "", 1: "", 2: ""}
    assert table["stats"]["scheduling_state"] == "INFEASIBLE"
    with pytest.raises(FakeRayDeadlockError) as info:
        ray.get(pg.ready())
    message = str(info.value)
    assert "block forever" in message
    assert "STRICT_SPREAD" in message
    assert "{GPU: 3}" in message  # needed
    assert "{CPU: 136, GPU: 16" in message  # the cluster's total
    ray.util.remove_placement_group(pg)


def test_pending_group_placed_when_a_node_joins(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 1}] * 3, strategy="STRICT_SPREAD")
    ref = where.options(num_gpus=1, num_cpus=0, scheduling_strategy=strategy(pg, 2)).remote()
    assert not pg.wait(1)
    node = fake_ray_cluster.add_node(num_gpus=2, num_cpus=4)
    assert pg.wait(1)
    assert len(set(ray.util.placement_group_table(pg)["bundles_to_node_id"].values())) == 3
    assert ray.get(ref)["pg"] == pg.id.hex()
    assert node.node_id in {n["NodeID"] for n in ray.nodes()}
    ray.util.remove_placement_group(pg)


def test_no_resources_group_waits_for_another_to_go(fake_ray_cluster: FakeRayCluster) -> None:
    holders = [ray.util.placement_group([{"GPU": 8}]) for _ in range(2)]
    waiting = ray.util.placement_group([{"GPU": 4}])
    assert not waiting.wait(1)
    assert ray.util.placement_group_table(waiting)["stats"]["scheduling_state"] == "NO_RESOURCES"
    ray.util.remove_placement_group(holders[0])
    assert waiting.wait(1)
    for g in (holders[1], waiting):
        ray.util.remove_placement_group(g)


def test_removal(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 1}], name="to-remove")
    assert ray.util.get_placement_group("to-remove") == pg
    ray.util.remove_placement_group(pg)
    ray.util.remove_placement_group(pg)  # twice is fine, as in Ray
    assert ray.util.placement_group_table(pg)["state"] == "REMOVED"
    with pytest.raises(Exception, match=r"Placement group PlacementGroupID\(\w+\) does not exist"):
        pg.wait(1)
    with pytest.raises(ray.exceptions.TaskPlacementGroupRemoved):
        ray.get(pg.ready())
    with pytest.raises(ValueError, match="Failed to look up placement group with name: to-remove"):
        ray.util.get_placement_group("to-remove")
    again = ray.util.placement_group([{"GPU": 1}], name="to-remove")  # the name is free again
    with pytest.raises(ray.exceptions.RaySystemError, match="already exists"):
        ray.util.placement_group([{"GPU": 1}], name="to-remove")
    ray.util.remove_placement_group(again)
    assert [g.state for g in fake_ray_cluster.placement_groups] == ["REMOVED", "REMOVED"]
    assert fake_ray_cluster.live_placement_groups == []


def test_soft_target_node_and_label_selectors(fake_ray_cluster: FakeRayCluster) -> None:
    target = fake_ray_cluster.node("gpu-1").node_id
    pg = ray.util.placement_group([{"GPU": 1}], strategy="STRICT_PACK", _soft_target_node_id=target)
    assert fake_ray_cluster.placement_group(pg).bundle_node_names == ("gpu-1",)
    gpu0 = fake_ray_cluster.node("gpu-0").node_id
    pg2 = ray.util.placement_group(
        [{"CPU": 1}, {"CPU": 1}],
        strategy="SPREAD",
        bundle_label_selector=[
            {"ray.io/node-id": gpu0},
            {"ray.io/node-id": f"!in({gpu0},{target})"},
        ],
    )
    assert fake_ray_cluster.placement_group(pg2).bundle_node_names == ("gpu-0", "head")
    for g in (pg, pg2):
        ray.util.remove_placement_group(g)


def test_placement_group_table_of_all_and_of_foreign_groups(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    a = ray.util.placement_group([{"CPU": 1}])
    b = ray.util.placement_group([{"GPU": 1}])
    table = ray.util.placement_group_table()
    assert set(table) == {a.id.hex(), b.id.hex()}
    foreign = PlacementGroup(ray.PlacementGroupID.from_random())
    assert ray.util.placement_group_table(foreign) == {}
    with pytest.raises(ValueError, match="not one of this fake Ray cluster's"):
        ray.util.remove_placement_group(foreign)
    for g in (a, b):
        ray.util.remove_placement_group(g)


# ---------------------------------------------------------------------- tasks


def test_task_over_its_bundle_fails_as_in_ray(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 1}, {"GPU": 1, "CPU": 1}])
    with pytest.raises(
        ValueError,
        match=r"Cannot schedule where with the placement group because the resource "
        r"request \{'CPU': 1, 'GPU': 2\}",
    ):
        where.options(num_gpus=2, scheduling_strategy=strategy(pg, 0)).remote()
    with pytest.raises(ValueError, match="bundle index 2 is invalid"):
        where.options(num_gpus=1, scheduling_strategy=strategy(pg, 2)).remote()
    stuck = where.options(num_gpus=1, scheduling_strategy=strategy(pg, 0)).remote()  # default CPU 1
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(stuck, timeout=10)
    with pytest.raises(FakeRayDeadlockError, match="can never hold it"):
        ray.get(stuck)
    ray.cancel(stuck)
    ray.util.remove_placement_group(pg)


def test_task_exceptions_surface_like_ray(fake_ray_cluster: FakeRayCluster) -> None:
    with pytest.raises(BoomError) as info:
        ray.get(boom.remote("bad thing"))
    error = info.value
    assert isinstance(error, ray.exceptions.RayTaskError)
    assert type(error).__name__ == "RayTaskError(BoomError)"
    assert isinstance(error.cause, BoomError)
    text = str(error)
    assert "ray::boom()" in text
    assert text.strip().endswith("BoomError: bad thing")
    assert "pytest_raycallbacks/fake_ray" not in text  # the fake's frames are hidden, as Ray's
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(boom.remote("again"))
    task = fake_ray_cluster.tasks_of("boom")[0]
    assert task.state == "FAILED"
    assert "BoomError" in (task.error or "")


def test_failed_dependency_fails_the_dependent(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote
    def plus(x: int) -> int:
        return x + 1

    with pytest.raises(BoomError):
        ray.get(plus.remote(boom.remote("upstream")))
    assert ray.get(plus.remote(plus.remote(ray.put(1)))) == 3


def test_retries_and_injected_failures(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote(max_retries=2, retry_exceptions=True)
    def flaky() -> str:
        return "ok"

    fault = fake_ray_cluster.fail_task(ValueError("transient"), function=flaky._function, times=2)
    assert ray.get(flaky.remote()) == "ok"
    assert fault.fired == 2
    assert fake_ray_cluster.tasks_of(flaky._function)[0].attempts == 3
    fake_ray_cluster.fail_task(ValueError("always"), function=flaky._function)
    with pytest.raises(ValueError, match="always"):
        ray.get(flaky.remote())


def test_node_affinity(fake_ray_cluster: FakeRayCluster) -> None:
    gpu1 = fake_ray_cluster.node("gpu-1").node_id
    head = fake_ray_cluster.head.node_id
    info = ray.get(
        where.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(gpu1, soft=False)
        ).remote()
    )
    assert info["node"] == gpu1
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match="soft=False"):
        ray.get(
            where.options(
                num_gpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)
            ).remote()
        )
    soft = ray.get(
        where.options(
            num_gpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=True)
        ).remote()
    )
    assert soft["node"] != head and soft["gpus"] == [0]
    record = fake_ray_cluster.tasks_of("where")[0]
    assert record.node_name == "gpu-1"
    assert record.strategy == "NODE_AFFINITY"


def test_nested_tasks_release_cpu_while_blocked() -> None:
    @ray.remote(num_cpus=1)
    def child() -> int:
        return 1

    @ray.remote(num_cpus=1)
    def parent() -> int:
        return ray.get(child.remote()) + 1

    with FakeRayCluster([{"num_cpus": 1}]):  # one CPU: the parent must lend it while it waits
        assert ray.get(parent.remote()) == 2


def test_a_task_waiting_on_itself_is_a_deadlock_not_a_hang() -> None:
    @ray.remote(num_gpus=1, num_cpus=0)
    def needs_gpu() -> int:
        return 1

    @ray.remote(num_gpus=1, num_cpus=0)
    def holder() -> int:
        return ray.get(needs_gpu.remote())  # the only GPU is the holder's

    with FakeRayCluster([{"num_cpus": 1, "num_gpus": 1}]), pytest.raises(FakeRayDeadlockError):
        ray.get(holder.remote())


def test_objects_are_copies_and_validated(fake_ray_cluster: FakeRayCluster) -> None:
    value = {"a": [1]}
    ref = ray.put(value)
    got = ray.get(ref)
    assert got == value and got is not value
    got["a"].append(2)
    assert ray.get(ref) == {"a": [1]}
    assert isinstance(ref, ray.ObjectRef)
    assert repr(ref).startswith("ObjectRef(")
    with pytest.raises(TypeError, match=r"Calling 'put' on an ray\.ObjectRef is not allowed"):
        ray.put(ref)
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        ray.get((ref,))
    with pytest.raises(TypeError, match=r"single ray\.ObjectRef"):
        ray.wait(ref)
    with pytest.raises(TypeError, match="Could not serialize"):
        ray.put(threading.Lock())
    ready, rest = ray.wait([ray.put(1), ray.put(2)], num_returns=2, timeout=0)
    assert len(ready) == 2 and rest == []


def test_multiple_returns_and_cancel(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote(num_returns=2)
    def pair() -> tuple[int, int]:
        return 1, 2

    a, b = pair.remote()
    assert ray.get([a, b]) == [1, 2]
    pg = ray.util.placement_group([{"GPU": 9}])
    stuck = where.options(num_gpus=1, num_cpus=0, scheduling_strategy=strategy(pg)).remote()
    ray.cancel(stuck)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(stuck)
    ray.util.remove_placement_group(pg)


def test_slow_tasks_use_cluster_time(fake_ray_cluster: FakeRayCluster) -> None:
    fake_ray_cluster.slow_task(120.0, function="where")
    ref = where.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=30)
    assert ray.get(ref, timeout=200)["node"]
    assert fake_ray_cluster.clock_skipped_s > 119


def test_runtime_env_and_context(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote
    def context() -> dict[str, Any]:
        ctx = ray.get_runtime_context()
        return {
            "env": os.environ.get("MY_VAR"),
            "task_id": ctx.get_task_id(),
            "assigned": ctx.get_assigned_resources(),
            "runtime_env": ctx.runtime_env,
            "ip": ray.util.get_node_ip_address(),
        }

    info = ray.get(context.options(runtime_env={"env_vars": {"MY_VAR": "1"}}, num_cpus=2).remote())
    assert info["env"] == "1"
    assert info["assigned"] == {"CPU": 2.0}
    assert info["runtime_env"]["env_vars"] == {"MY_VAR": "1"}
    assert info["task_id"] == fake_ray_cluster.tasks_of("context")[0].id
    assert info["ip"] == fake_ray_cluster.head.ip
    ctx = ray.get_runtime_context()
    assert ctx.get_task_id() is None
    with pytest.raises(AssertionError, match="only available when the process is a"):
        ctx.get_assigned_resources()
    assert ray.get_gpu_ids() == []
    assert ray.util.get_current_placement_group() is None


def test_capture_child_tasks(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote(num_cpus=0)
    def inner() -> str | None:
        return ray.get_runtime_context().get_placement_group_id()

    @ray.remote(num_cpus=1)
    def outer() -> str | None:
        return ray.get(inner.remote())

    pg = ray.util.placement_group([{"CPU": 2}])
    captured = ray.get(
        outer.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                pg, placement_group_capture_child_tasks=True
            )
        ).remote()
    )
    not_captured = ray.get(outer.options(scheduling_strategy=strategy(pg)).remote())
    assert captured == pg.id.hex()
    assert not_captured is None
    ray.util.remove_placement_group(pg)


def test_async_api(fake_ray_cluster: FakeRayCluster) -> None:
    async def main() -> Any:
        pg = ray.util.placement_group([{"GPU": 1}])
        await pg.ready()
        value = await where.remote()
        ray.util.remove_placement_group(pg)
        return value

    assert asyncio.run(main())["node"]


def test_generators_and_unknown_strategies_are_refused(fake_ray_cluster: FakeRayCluster) -> None:
    @ray.remote
    def gen() -> Any:
        yield 1

    with pytest.raises(FakeRayUnsupported, match="generator"):
        gen.remote()


# ---------------------------------------------------------------------- actors


@ray.remote
class Counter:
    def __init__(self, start: int) -> None:
        self.value = start

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def devices(self) -> Any:
        return (
            ray.get_gpu_ids(),
            os.environ.get("CUDA_VISIBLE_DEVICES"),
            ray.get_runtime_context().get_actor_id(),
        )

    def fail(self) -> None:
        raise BoomError("in actor")


def test_actors(fake_ray_cluster: FakeRayCluster) -> None:
    counter = Counter.remote(10)
    assert isinstance(counter, ray.actor.ActorHandle)
    assert ray.get([counter.add.remote(1), counter.add.remote(2)]) == [11, 13]
    with pytest.raises(BoomError):
        ray.get(counter.fail.remote())
    assert ray.get(counter.add.remote(0)) == 13  # the actor survives a method error
    ray.kill(counter)
    with pytest.raises(ray.exceptions.ActorDiedError, match=r"killed by `ray\.kill`"):
        ray.get(counter.add.remote(1))
    with pytest.raises(ValueError, match="only supported for actors"):
        ray.kill(ray.put(1))  # type: ignore[arg-type]


def test_gpu_actor_in_bundle_and_named_actors(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group(
        [{"GPU": 1, "CPU": 1}, {"GPU": 1, "CPU": 1}], strategy="STRICT_PACK"
    )
    actor = Counter.options(num_gpus=1, scheduling_strategy=strategy(pg, 1), name="c1").remote(0)
    gpus, cvd, actor_id = ray.get(actor.devices.remote())
    assert gpus == [1] and cvd == "1" and actor_id
    assert ray.get_actor("c1") == actor
    assert ray.util.list_named_actors() == ["c1"]
    with pytest.raises(ValueError, match="already taken"):
        Counter.options(name="c1").remote(0)
    assert Counter.options(name="c1", get_if_exists=True).remote(0) == actor
    with pytest.raises(ValueError, match="Failed to look up actor with name 'nope'"):
        ray.get_actor("nope")
    with pytest.raises(ValueError, match="actor requires 1"):
        Counter.options(
            scheduling_strategy=strategy(ray.util.placement_group([{"GPU": 1}]))
        ).remote(0)
    ray.util.remove_placement_group(pg)  # kills the actor in it, as Ray does
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.add.remote(1))
    for g in fake_ray_cluster.live_placement_groups:
        ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(g.id))))


# ---------------------------------------------------------------------- init / shutdown


@pytest.mark.fake_ray_cluster(connected=False)
def test_init_and_shutdown(fake_ray_cluster: FakeRayCluster) -> None:
    assert not ray.is_initialized()
    with pytest.raises(ray.exceptions.RaySystemError, match="Ray has not been started yet"):
        ray.nodes()
    context = ray.init(address="auto")
    assert ray.is_initialized()
    assert context.address_info["node_id"] == fake_ray_cluster.head.node_id
    with pytest.raises(RuntimeError, match=r"ray\.init twice"):
        ray.init()
    ray.init(ignore_reinit_error=True)
    pg = ray.util.placement_group([{"GPU": 1}])
    detached = ray.util.placement_group([{"GPU": 1}], lifetime="detached")
    ray.shutdown()  # the driver's non-detached groups go with it
    assert not ray.is_initialized()
    assert fake_ray_cluster.placement_group(pg).state == "REMOVED"
    assert fake_ray_cluster.placement_group(detached).state == "CREATED"
    ray.put(1)  # like Ray, the API connects again on use
    assert ray.is_initialized()
    ray.util.remove_placement_group(detached)


def test_call_log(fake_ray_cluster: FakeRayCluster) -> None:
    pg = ray.util.placement_group([{"GPU": 1}], strategy="PACK", name="logged")
    ray.get(pg.ready())
    ray.util.remove_placement_group(pg)
    apis = [c.api for c in fake_ray_cluster.calls]
    assert apis == [
        "ray.util.placement_group",
        "PlacementGroup.ready",
        "ray.get",
        "ray.util.remove_placement_group",
    ]
    create = fake_ray_cluster.calls_to("ray.util.placement_group")[0]
    assert create.args == ([{"GPU": 1}],)
    assert create.kwargs == {"strategy": "PACK", "name": "logged"}
    assert create.task_id is None and create.error is None
