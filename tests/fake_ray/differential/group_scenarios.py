# mypy: disable-error-code="no-untyped-call,no-any-return"
# (Ray's public functions are untyped; scenarios return what Ray returns.)
"""Differential scenarios of placement groups: validation, strategies, lifecycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray
from ray.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import (
    PlacementGroupSchedulingStrategy,
)

from .harness import (
    HEX_ID,
    Env,
    Outcome,
    attempt,
    gpu_bundles,
    scenario,
)
from .remote import where_am_i

# ---------------------------------------------------------------------- helpers


def _group_outcome(env: Env, pg: Any, *, expect_ready: bool, precise: bool = False) -> Outcome:
    """The group's state and placement. Which of two equal GPU nodes Ray picks is not
    determined, so node kinds say "gpu" for both unless ``precise``."""
    ready = pg.wait(env.ready_s if expect_ready else env.pending_s)
    table = placement_group_table(pg)
    nodes = [table["bundles_to_node_id"][i] for i in sorted(table["bundles_to_node_id"])]
    placed = [n for n in nodes if n]
    return {
        "ready": ready,
        "state": table["state"],
        "strategy": table["strategy"],
        "bundles": [table["bundles"][i] for i in sorted(table["bundles"])],
        "distinct_nodes": len(set(placed)),
        "node_kinds": sorted(
            {
                env.topology.kind(n) if precise else env.topology.kind(n).replace("-a100", "")
                for n in nodes
            }
        ),
        "all_bundles_placed": len(placed) == len(nodes),
    }


def _with_group(
    env: Env, bundles: list[dict[str, float]], strategy: str, *, expect_ready: bool, **kw: Any
) -> Outcome:
    pg = placement_group(bundles, strategy=strategy, **kw)
    try:
        return _group_outcome(env, pg, expect_ready=expect_ready)
    finally:
        remove_placement_group(pg)


# ---------------------------------------------------------------------- validation


@scenario("an empty bundle list is rejected with Ray's ValueError")
def invalid_empty_bundle_list(env: Env) -> Outcome:
    return attempt(lambda: placement_group([]))


@scenario("bundles that are not a list are rejected")
def invalid_bundles_not_a_list(env: Env) -> Outcome:
    return attempt(lambda: placement_group({"CPU": 1}))  # type: ignore[arg-type]


@scenario("an empty bundle dict is rejected")
def invalid_empty_bundle(env: Env) -> Outcome:
    return attempt(lambda: placement_group([{"CPU": 1}, {}]))


@scenario("a bundle of only zeros is rejected")
def invalid_zero_bundle(env: Env) -> Outcome:
    return attempt(lambda: placement_group([{"CPU": 0, "GPU": 0}]))


@scenario("a non-numeric quantity is rejected")
def invalid_bundle_value(env: Env) -> Outcome:
    return attempt(lambda: placement_group([{"GPU": "1"}]))  # type: ignore[dict-item]


@scenario("an unknown strategy is rejected")
def invalid_strategy(env: Env) -> Outcome:
    return attempt(lambda: placement_group([{"CPU": 1}], strategy="PACKED"))


@scenario("an unknown lifetime is rejected")
def invalid_lifetime(env: Env) -> Outcome:
    return attempt(lambda: placement_group([{"CPU": 1}], lifetime="forever"))


@scenario("_soft_target_node_id only works with STRICT_PACK")
def invalid_soft_target(env: Env) -> Outcome:
    return attempt(
        lambda: placement_group(
            [{"CPU": 1}], strategy="PACK", _soft_target_node_id=env.topology.head
        )
    )


@scenario("bundle_label_selector must have one selector per bundle")
def invalid_label_selector_length(env: Env) -> Outcome:
    return attempt(
        lambda: placement_group([{"CPU": 1}] * 2, bundle_label_selector=[{"ray.io/node-id": "x"}])
    )


@scenario("an empty name is refused by get_placement_group")
def invalid_get_placement_group_empty_name(env: Env) -> Outcome:
    return attempt(lambda: get_placement_group(""))


# ---------------------------------------------------------------------- strategies


@scenario("PACK of two GPU bundles lands on one GPU node")
def pack_two_gpus(env: Env) -> Outcome:
    return _with_group(env, gpu_bundles(2), "PACK", expect_ready=True)


@scenario("PACK of one GPU more than a node holds spans two GPU nodes")
def pack_overflows_to_second_node(env: Env) -> Outcome:
    return _with_group(env, gpu_bundles(env.topology.gpus_per_node + 1), "PACK", expect_ready=True)


@scenario("PACK of CPU bundles fits on one node (any node: Ray's pick is not determined)")
def pack_cpu_bundles(env: Env) -> Outcome:
    out = _with_group(env, [{"CPU": 1}] * 2, "PACK", expect_ready=True)
    out.pop("node_kinds")
    return out


@scenario("SPREAD of one bundle per GPU node puts each on its own node")
def spread_gpu_bundles(env: Env) -> Outcome:
    return _with_group(env, gpu_bundles(len(env.topology.gpu_nodes)), "SPREAD", expect_ready=True)


@scenario("SPREAD of more GPU bundles than GPU nodes still succeeds, reusing nodes")
def spread_more_bundles_than_nodes(env: Env) -> Outcome:
    return _with_group(
        env, gpu_bundles(len(env.topology.gpu_nodes) + 1), "SPREAD", expect_ready=True
    )


@scenario("SPREAD of one CPU bundle per node uses every node")
def spread_cpu_every_node(env: Env) -> Outcome:
    n = 1 + len(env.topology.gpu_nodes) + len(env.topology.cpu_nodes)
    return _with_group(env, [{"CPU": 1}] * n, "SPREAD", expect_ready=True)


@scenario("STRICT_SPREAD of one GPU bundle per GPU node is placed")
def strict_spread_fits(env: Env) -> Outcome:
    return _with_group(
        env, gpu_bundles(len(env.topology.gpu_nodes)), "STRICT_SPREAD", expect_ready=True
    )


@scenario("STRICT_SPREAD of more GPU bundles than GPU nodes stays pending")
def strict_spread_pending(env: Env) -> Outcome:
    out = _with_group(
        env, gpu_bundles(len(env.topology.gpu_nodes) + 1), "STRICT_SPREAD", expect_ready=False
    )
    return out


@scenario("STRICT_SPREAD of more CPU bundles than nodes is pending (infeasible)")
def strict_spread_more_than_nodes(env: Env) -> Outcome:
    n = 2 + len(env.topology.gpu_nodes) + len(env.topology.cpu_nodes)
    pg = placement_group([{"CPU": 1}] * n, strategy="STRICT_SPREAD")
    try:
        out = _group_outcome(env, pg, expect_ready=False)
        out["scheduling_state"] = placement_group_table(pg)["stats"]["scheduling_state"]
        return out
    finally:
        remove_placement_group(pg)


@scenario("STRICT_PACK of a node's GPUs plus one more is infeasible")
def strict_pack_infeasible(env: Env) -> Outcome:
    per = env.topology.gpus_per_node
    pg = placement_group([{"GPU": per}, {"GPU": 1}], strategy="STRICT_PACK")
    try:
        out = _group_outcome(env, pg, expect_ready=False)
        out["scheduling_state"] = placement_group_table(pg)["stats"]["scheduling_state"]
        return out
    finally:
        remove_placement_group(pg)


@scenario("STRICT_PACK of CPU+GPU bundles is placed on a single GPU node")
def strict_pack_fits(env: Env) -> Outcome:
    return _with_group(env, [{"CPU": 1, "GPU": 1}] * 2, "STRICT_PACK", expect_ready=True)


@scenario("a bundle larger than any node is infeasible and pending")
def infeasible_gpu_count(env: Env) -> Outcome:
    pg = placement_group([{"GPU": env.topology.gpus_per_node + 1}])
    try:
        out = _group_outcome(env, pg, expect_ready=False)
        out["get_ready"] = attempt(lambda: ray.get(pg.ready(), timeout=env.pending_s))
        out["wait_ready"] = [len(x) for x in ray.wait([pg.ready()], timeout=env.pending_s)]
        out["scheduling_state"] = placement_group_table(pg)["stats"]["scheduling_state"]
        return out
    finally:
        remove_placement_group(pg)


@scenario("a custom resource no node has leaves the group pending (infeasible)")
def infeasible_custom_resource(env: Env) -> Outcome:
    pg = placement_group([{"GPU": 1, "raycallbacks_no_such_resource": 1}])
    try:
        out = _group_outcome(env, pg, expect_ready=False)
        out["scheduling_state"] = placement_group_table(pg)["stats"]["scheduling_state"]
        return out
    finally:
        remove_placement_group(pg)


@scenario("an accelerator_type bundle lands on the node with that accelerator")
def accelerator_type_bundle(env: Env) -> Outcome:
    if not env.topology.accelerator_nodes:
        return {"skipped": "no node with an accelerator_type resource"}
    node = next(n for n in ray.nodes() if n["NodeID"] == env.topology.accelerator_nodes[0])
    key = next(k for k in node["Resources"] if k.startswith("accelerator_type:"))
    before = ray.available_resources().get(key)
    pg = placement_group([{"GPU": 1, key: 0.001}])
    try:
        out = _group_outcome(env, pg, expect_ready=True, precise=True)
        out["accelerator_left"] = round(ray.available_resources().get(key, 0.0), 4)
        out["accelerator_before"] = before
        return out
    finally:
        remove_placement_group(pg)


@scenario("fractional GPU bundles share one device")
def fractional_gpu_bundles(env: Env) -> Outcome:
    pg = placement_group(gpu_bundles(2, 0.5), strategy="STRICT_PACK")
    try:
        out = _group_outcome(env, pg, expect_ready=True)
        infos = ray.get(
            [
                where_am_i.options(
                    num_gpus=0.5,
                    num_cpus=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i),
                ).remote()
                for i in range(2)
            ]
        )
        out["gpu_ids"] = [i["gpu_ids"] for i in infos]
        return out
    finally:
        remove_placement_group(pg)


@scenario("available GPUs drop by what a group reserves and come back on removal")
def resource_accounting(env: Env) -> Outcome:
    total = ray.cluster_resources().get("GPU", 0.0)
    before = ray.available_resources().get("GPU", 0.0)
    pg = placement_group(gpu_bundles(2), strategy="PACK")
    pg.wait(env.ready_s)
    during = ray.available_resources().get("GPU", 0.0)

    def group_keys() -> list[str]:
        return sorted(
            HEX_ID.sub("<id>", k)
            for k in ray.available_resources()
            if "_group_" in k and "GPU" in k
        )

    deadline = time.monotonic() + env.ready_s
    keys = group_keys()
    while len(keys) < 3 and time.monotonic() < deadline:  # a real cluster reports lazily
        time.sleep(0.05)
        keys = group_keys()
    remove_placement_group(pg)
    after = _settle(lambda: ray.available_resources().get("GPU", 0.0), before)
    return {
        "total_unchanged": ray.cluster_resources().get("GPU", 0.0) == total,
        "reserved": before - during,
        "restored": after == before,
        "group_resource_keys": keys,
    }


# ---------------------------------------------------------------------- lifecycle


@scenario("a removed group reports REMOVED; wait raises; ready() fails; removing twice is fine")
def removal(env: Env) -> Outcome:
    pg = placement_group([{"CPU": 1}], name="raycallbacks-diff-removal")
    pg.wait(env.ready_s)
    remove_placement_group(pg)
    return {
        "state": placement_group_table(pg)["state"],
        "wait": attempt(lambda: pg.wait(env.pending_s)),
        "get_ready": attempt(lambda: ray.get(pg.ready(), timeout=env.ready_s)),
        "remove_again": attempt(lambda: remove_placement_group(pg)),
        "by_name": attempt(lambda: get_placement_group("raycallbacks-diff-removal")),
    }


@scenario("names: a live name cannot be reused; get_placement_group finds the group")
def names(env: Env) -> Outcome:
    pg = placement_group([{"CPU": 1}], name="raycallbacks-diff-name")
    try:
        pg.wait(env.ready_s)
        found = get_placement_group("raycallbacks-diff-name")
        return {
            "found_same": found.id == pg.id and found == pg,
            "found_bundles": found.bundle_specs,
            "duplicate": attempt(
                lambda: placement_group([{"CPU": 1}], name="raycallbacks-diff-name")
            ),
        }
    finally:
        remove_placement_group(pg)


@scenario("a pending group is placed once another group frees the resources")
def pending_until_freed(env: Env) -> Outcome:
    per = env.topology.gpus_per_node
    holders = [placement_group([{"GPU": per}]) for _ in env.topology.gpu_nodes]
    for h in holders:
        h.wait(env.ready_s)
    waiting = placement_group([{"GPU": per}])
    try:
        before = waiting.wait(env.pending_s)
        state_before = placement_group_table(waiting)["stats"]["scheduling_state"]
        remove_placement_group(holders.pop())
        after = waiting.wait(env.ready_s)
        return {"before": before, "state_before": state_before, "after": after}
    finally:
        for h in [*holders, waiting]:
            remove_placement_group(h)


@scenario("ready() resolves to the group itself")
def ready_returns_group(env: Env) -> Outcome:
    pg = placement_group([{"CPU": 1}])
    try:
        got = ray.get(pg.ready(), timeout=env.ready_s)
        return {"type": type(got).__name__, "same_id": got.id == pg.id, "bundles": got.bundle_specs}
    finally:
        remove_placement_group(pg)


def _settle(read: Callable[[], float], want: float, timeout_s: float = 10.0) -> float:
    """Poll ``read()`` until it equals ``want`` (Ray frees resources asynchronously)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value
