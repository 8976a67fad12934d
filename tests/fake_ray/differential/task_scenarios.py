# mypy: disable-error-code="no-untyped-call,no-any-return"
# (Ray's public functions are untyped; scenarios return what Ray returns.)
"""Differential scenarios of tasks, objects and actors: bundles, node affinity, errors."""

from __future__ import annotations

import os

import ray
from ray.util.placement_group import (
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from .harness import (
    Env,
    Outcome,
    attempt,
    attempt_until_error,
    gpu_bundles,
    scenario,
)
from .remote import (
    ScenarioActor,
    ScenarioError,
    add_one,
    raise_key_error,
    raise_scenario_error,
    where_am_i,
)

# ---------------------------------------------------------------------- tasks in bundles


@scenario("tasks in bundles run on the bundle's node with its GPU (CUDA_VISIBLE_DEVICES)")
def tasks_in_bundles(env: Env) -> Outcome:
    pg = placement_group(gpu_bundles(2), strategy="STRICT_PACK")
    try:
        pg.wait(env.ready_s)
        table = placement_group_table(pg)
        infos = ray.get(
            [
                where_am_i.options(
                    num_gpus=1,
                    num_cpus=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i),
                ).remote()
                for i in range(2)
            ]
        )
        return {
            "on_bundle_node": [
                infos[i]["node"] == table["bundles_to_node_id"][i] for i in range(2)
            ],
            "gpu_ids": [i["gpu_ids"] for i in infos],
            "cuda_visible_devices": [i["cuda_visible_devices"] for i in infos],
            "placement_group_id_matches": [i["placement_group"] == pg.id.hex() for i in infos],
            "current_group_matches": [i["current_group"] == pg.id.hex() for i in infos],
            "assigned": [i["assigned"] for i in infos],
        }
    finally:
        remove_placement_group(pg)


@scenario("a task asking more than any bundle holds is refused at submission")
def task_over_bundle(env: Env) -> Outcome:
    pg = placement_group(gpu_bundles(2), strategy="PACK")
    try:
        pg.wait(env.ready_s)
        over = attempt(
            lambda: where_am_i.options(
                num_gpus=2, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)
            ).remote()
        )
        index = attempt(
            lambda: where_am_i.options(
                num_gpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 5)
            ).remote()
        )
        return {"over": over, "bad_index": index}
    finally:
        remove_placement_group(pg)


@scenario("a task whose default CPU does not fit its GPU-only bundle never runs")
def task_default_cpu_in_gpu_bundle(env: Env) -> Outcome:
    pg = placement_group([{"GPU": 1}, {"GPU": 1, "CPU": 1}], strategy="PACK")
    try:
        pg.wait(env.ready_s)
        ref = where_am_i.options(
            num_gpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)
        ).remote()
        out = {"get": attempt(lambda: ray.get(ref, timeout=env.pending_s))}
        ray.cancel(ref, force=True)
        return out
    finally:
        remove_placement_group(pg)


@scenario("a task in a pending group runs once the group is placed")
def task_waits_for_group(env: Env) -> Outcome:
    per = env.topology.gpus_per_node
    holders = [placement_group([{"GPU": per}]) for _ in env.topology.gpu_nodes]
    for h in holders:
        h.wait(env.ready_s)
    pg = placement_group([{"GPU": 1}])
    try:
        ref = where_am_i.options(
            num_gpus=1, num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)
        ).remote()
        early = attempt(lambda: ray.get(ref, timeout=env.pending_s))
        ready_lists = [len(x) for x in ray.wait([ref], timeout=0)]
        remove_placement_group(holders.pop())
        info = ray.get(ref, timeout=env.ready_s)
        return {
            "early": early,
            "wait_before": ready_lists,
            "ran_in_group": info["placement_group"] == pg.id.hex(),
        }
    finally:
        for h in [*holders, pg]:
            remove_placement_group(h)


@scenario("a task submitted to a removed group stays pending")
def task_in_removed_group(env: Env) -> Outcome:
    pg = placement_group([{"GPU": 1}])
    pg.wait(env.ready_s)
    remove_placement_group(pg)
    ref = where_am_i.options(
        num_gpus=1, num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)
    ).remote()
    out = {"get": attempt(lambda: ray.get(ref, timeout=env.pending_s))}
    ray.cancel(ref, force=True)
    return out


# ---------------------------------------------------------------------- node affinity


@scenario("a hard node-affinity task runs on that node")
def node_affinity_hard(env: Env) -> Outcome:
    target = env.topology.gpu_nodes[-1]
    info = ray.get(
        where_am_i.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(target, soft=False)
        ).remote(),
        timeout=env.ready_s,
    )
    return {
        "on_target": info["node"] == target,
        "gpu_ids": info["gpu_ids"],
        "assigned": info["assigned"],
    }


@scenario("hard affinity to a node that cannot hold the task fails as unschedulable")
def node_affinity_infeasible(env: Env) -> Outcome:
    ref = where_am_i.options(
        num_gpus=1,
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(env.topology.head, soft=False),
    ).remote()
    return attempt(lambda: ray.get(ref, timeout=env.ready_s))


@scenario("soft affinity to a node that cannot hold the task runs it elsewhere")
def node_affinity_soft_fallback(env: Env) -> Outcome:
    info = ray.get(
        where_am_i.options(
            num_gpus=1,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(env.topology.head, soft=True),
        ).remote(),
        timeout=env.ready_s,
    )
    return {
        "kind": env.topology.kind(info["node"]).replace("-a100", ""),
        "gpu_ids": len(info["gpu_ids"]),
    }


@scenario("hard affinity to an unknown node id fails as unschedulable")
def node_affinity_unknown_node(env: Env) -> Outcome:
    ref = where_am_i.options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy("ab" * 28, soft=False)
    ).remote()
    return attempt(lambda: ray.get(ref, timeout=env.ready_s))


@scenario("a node id that is not hex is refused by the strategy")
def node_affinity_bad_id(env: Env) -> Outcome:
    return attempt(lambda: NodeAffinitySchedulingStrategy("not-a-node", soft=False))


# ---------------------------------------------------------------------- tasks and objects


@scenario("a task's exception is a RayTaskError and an instance of its own type")
def task_exception(env: Env) -> Outcome:
    try:
        ray.get(raise_scenario_error.remote("bad thing"), timeout=env.ready_s)
    except ScenarioError as exc:
        lines = str(exc).strip().splitlines()
        return {
            "type": type(exc).__name__,
            "is_ray_task_error": isinstance(exc, ray.exceptions.RayTaskError),
            "cause": repr(getattr(exc, "cause", None)),
            "first_line_is_task": lines[0]
            .lstrip("\x1b[36m")
            .startswith("ray::raise_scenario_error()"),
            "last_line": lines[-1],
        }
    return {"raised": False}


@scenario("a KeyError in a task is caught as KeyError")
def task_key_error(env: Env) -> Outcome:
    try:
        ray.get(raise_key_error.remote(), timeout=env.ready_s)
    except KeyError as exc:
        return {"type": type(exc).__name__, "last_line": str(exc).strip().splitlines()[-1]}
    return {"raised": False}


@scenario("runtime_env env_vars are visible in the task, not in the driver")
def runtime_env_vars(env: Env) -> Outcome:
    info = ray.get(
        where_am_i.options(runtime_env={"env_vars": {"RAYCALLBACKS_DIFF_FOO": "bar"}}).remote(),
        timeout=env.ready_s,
    )
    return {"task": info["env_foo"], "driver": os.environ.get("RAYCALLBACKS_DIFF_FOO")}


@scenario("object refs passed to tasks are resolved; put/get/wait validate their inputs")
def objects(env: Env) -> Outcome:
    ref = ray.put(41)
    return {
        "chained": ray.get(add_one.remote(add_one.remote(ref)), timeout=env.ready_s),
        "list": ray.get([ray.put(1), ray.put(2)]),
        "wait": [len(x) for x in ray.wait([ray.put(1), ray.put(2)], num_returns=1)],
        "get_int": attempt(lambda: ray.get(1)),  # type: ignore[call-overload]
        "get_tuple": attempt(lambda: ray.get((ref,))),
        "wait_single": type(attempt(lambda: ray.wait(ref))).__name__,  # type: ignore[arg-type]
        "wait_single_error": attempt(lambda: ray.wait(ref)).get("error"),  # type: ignore[arg-type]
        "put_ref": attempt(lambda: ray.put(ref)),
    }


@scenario("an actor in a GPU bundle keeps its state and device; once killed, calls fail")
def actor_in_bundle(env: Env) -> Outcome:
    pg = placement_group([{"GPU": 1, "CPU": 1}] * 2, strategy="STRICT_PACK")
    try:
        pg.wait(env.ready_s)
        actor = ScenarioActor.options(  # type: ignore[attr-defined]
            num_gpus=1, num_cpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 1)
        ).remote(10)
        calls = ray.get([actor.add.remote(1), actor.add.remote(2)], timeout=env.ready_s)
        devices = list(ray.get(actor.devices.remote(), timeout=env.ready_s))
        ray.kill(actor)
        after = attempt_until_error(
            lambda: ray.get(actor.add.remote(1), timeout=env.ready_s), env.ready_s
        )
        return {
            "calls": calls,
            "devices": devices,
            "after_kill": after.get("error"),
            "killed_message": "killed by `ray.kill`" in after.get("message", ""),
        }
    finally:
        remove_placement_group(pg)


@scenario("the driver has no GPUs and runs on the head node")
def driver_context(env: Env) -> Outcome:
    ctx = ray.get_runtime_context()
    return {
        "node_is_head": ctx.get_node_id() == env.topology.head,
        "gpu_ids": ray.get_gpu_ids(),
        "task_id": ctx.get_task_id(),
        "placement_group": ctx.get_placement_group_id(),
        "current_group": ray.util.get_current_placement_group(),
        "assigned": attempt(ctx.get_assigned_resources),
    }
