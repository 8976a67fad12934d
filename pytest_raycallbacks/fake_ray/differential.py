# mypy: disable-error-code="no-untyped-call,no-any-return"
# (Ray's public functions are untyped; scenarios return what Ray returns.)
"""The differential scenario table: evidence that the fake behaves as Ray does.

Each :class:`Scenario` drives Ray only through its public API (``import ray``), so the
same function runs against a real cluster and against :class:`FakeRayCluster`, and
returns a normalized *outcome* (a JSON-able dict: states, errors with their types and
messages, which kinds of node things landed on, GPU ids ...). The differential test runs
every scenario on a real multi-node cluster with logical GPUs and on a fake cluster that
mirrors its nodes (:func:`mirror_nodes`), and asserts equal outcomes.

Scenarios size themselves from the cluster they find (:class:`Topology`), so they need
only: a head node, at least two GPU nodes with at least two GPUs each, and an idle cluster
(each scenario removes what it creates). The reference topology (what
``differential_ray_cluster`` starts and :data:`REFERENCE_NODES` describes) is a 2-CPU head
plus two nodes of 2 CPUs and 2 GPUs, the first with ``accelerator_type:A100``.

Grow this table whenever the fake grows.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import ray
from ray.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from .topology import GIB, NodeSpec

Outcome = dict[str, Any]

#: The reference topology, as NodeSpecs (the fake's side of ``differential_ray_cluster``).
REFERENCE_NODES: Final = (
    NodeSpec(name="head", num_cpus=2, memory=4 * GIB, object_store_memory=GIB, head=True),
    NodeSpec(
        name="gpu-a",
        num_cpus=2,
        num_gpus=2,
        memory=4 * GIB,
        object_store_memory=GIB,
        resources={"accelerator_type:A100": 1.0},
    ),
    NodeSpec(name="gpu-b", num_cpus=2, num_gpus=2, memory=4 * GIB, object_store_memory=GIB),
)

_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{16,}(?![0-9a-f])")


class ScenarioError(Exception):
    """Raised inside tasks by the exception scenarios (importable by Ray workers)."""


@ray.remote
def where_am_i() -> dict[str, Any]:
    """Task body: where it runs and what it was given."""
    ctx = ray.get_runtime_context()
    current = ray.util.get_current_placement_group()
    return {
        "node": ctx.get_node_id(),
        "gpu_ids": [int(i) for i in ray.get_gpu_ids()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "placement_group": ctx.get_placement_group_id(),
        "current_group": None if current is None else current.id.hex(),
        "assigned": ctx.get_assigned_resources(),
        "env_foo": os.environ.get("RAYCALLBACKS_DIFF_FOO"),
    }


@ray.remote
def raise_scenario_error(message: str) -> None:
    raise ScenarioError(message)


@ray.remote
def raise_key_error() -> Any:
    empty: dict[str, Any] = {}
    return empty["missing"]


@ray.remote
def add_one(x: int) -> int:
    return x + 1


@ray.remote
class ScenarioActor:
    """An actor with state, to compare actor behaviour."""

    def __init__(self, start: int) -> None:
        self.value = start

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def devices(self) -> tuple[list[int], str | None]:
        return [int(i) for i in ray.get_gpu_ids()], os.environ.get("CUDA_VISIBLE_DEVICES")


@dataclass(frozen=True)
class Topology:
    """What a scenario needs to know about the cluster it runs on."""

    head: str
    gpu_nodes: tuple[str, ...]
    cpu_nodes: tuple[str, ...]
    gpus_per_node: int
    cpus: dict[str, float]
    accelerator_nodes: tuple[str, ...]

    def kind(self, node_id: str) -> str:
        if node_id == "":
            return "-"
        if node_id == self.head:
            return "head"
        if node_id in self.accelerator_nodes:
            return "gpu-a100"
        if node_id in self.gpu_nodes:
            return "gpu"
        return "cpu"


def discover() -> Topology:
    """The topology of the cluster ``ray`` is connected to (real or fake)."""
    nodes = [n for n in ray.nodes() if n["Alive"]]
    head = next(n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"])
    gpu = tuple(n["NodeID"] for n in nodes if n["Resources"].get("GPU", 0) >= 1)
    cpu = tuple(n["NodeID"] for n in nodes if n["NodeID"] not in gpu and n["NodeID"] != head)
    per_node = int(min(n["Resources"]["GPU"] for n in nodes if n["NodeID"] in gpu)) if gpu else 0
    accel = tuple(
        n["NodeID"]
        for n in nodes
        if n["NodeID"] in gpu and any(k.startswith("accelerator_type:") for k in n["Resources"])
    )
    return Topology(
        head=head,
        gpu_nodes=gpu,
        cpu_nodes=cpu,
        gpus_per_node=per_node,
        cpus={n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in nodes},
        accelerator_nodes=accel,
    )


def mirror_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[NodeSpec]:
    """NodeSpecs of a fake cluster shaped like the alive nodes in ``ray.nodes()``."""
    specs = []
    alive = [n for n in nodes if n.get("Alive")]
    alive.sort(key=lambda n: "node:__internal_head__" not in n["Resources"])
    for i, n in enumerate(alive):
        res = dict(n["Resources"])
        head = res.pop("node:__internal_head__", None) is not None
        custom = {
            k: v
            for k, v in res.items()
            if not k.startswith("node:")
            and k not in ("CPU", "GPU", "memory", "object_store_memory")
        }
        labels = {k: v for k, v in (n.get("Labels") or {}).items() if k != "ray.io/node-id"}
        specs.append(
            NodeSpec(
                name="head" if head else f"node-{i}",
                num_cpus=res.get("CPU", 0.0),
                num_gpus=res.get("GPU", 0.0),
                memory=res.get("memory", 0.0),
                object_store_memory=res.get("object_store_memory", 0.0),
                resources=custom,
                labels=labels,
                head=head,
            )
        )
    return specs


_STR_SET = re.compile(r"\{'[^'{}]*'(?:, '[^'{}]*')+\}")


def normalize_message(text: str) -> str:
    """Ids become ``<id>``; a set of strings is listed sorted (set order varies by process)."""
    text = _ID.sub("<id>", text)
    return _STR_SET.sub(lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", text)


def error_outcome(exc: BaseException) -> Outcome:
    """An exception as an outcome: its type, whether it is a Ray error, and its message
    (:func:`normalize_message`)."""
    return {
        "error": type(exc).__name__,
        "ray_error": isinstance(exc, ray.exceptions.RayError),
        "message": normalize_message(str(exc)),
    }


def attempt(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or its exception as an :func:`error_outcome`."""
    try:
        return fn()
    except Exception as exc:
        return error_outcome(exc)


def attempt_until_error(fn: Callable[[], Any], timeout_s: float) -> dict[str, Any]:
    """Call ``fn()`` until it raises (bounded): the error outcome, or ``{"error": None}``.

    ``ray.kill`` is asynchronous on a real cluster: a call made right after it can still be
    served, more so on a loaded machine, so "the actor is dead" is awaited, not sampled.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = attempt(fn)
        if isinstance(outcome, dict) and outcome.get("error"):
            return outcome
        if time.monotonic() >= deadline:
            return {"error": None, "message": f"still answering after {timeout_s:g} s"}
        time.sleep(0.05)


@dataclass(frozen=True)
class Env:
    """What a scenario gets: the topology and the wait times to use."""

    topology: Topology
    ready_s: float = 20.0
    pending_s: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Env], Outcome]
    about: str


SCENARIOS: list[Scenario] = []


def scenario(about: str) -> Callable[[Callable[[Env], Outcome]], Callable[[Env], Outcome]]:
    def register(fn: Callable[[Env], Outcome]) -> Callable[[Env], Outcome]:
        SCENARIOS.append(Scenario(fn.__name__, fn, about))
        return fn

    return register


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


def _gpu(n: int, amount: float = 1.0) -> list[dict[str, float]]:
    return [{"GPU": amount} for _ in range(n)]


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
    return _with_group(env, _gpu(2), "PACK", expect_ready=True)


@scenario("PACK of one GPU more than a node holds spans two GPU nodes")
def pack_overflows_to_second_node(env: Env) -> Outcome:
    return _with_group(env, _gpu(env.topology.gpus_per_node + 1), "PACK", expect_ready=True)


@scenario("PACK of CPU bundles fits on one node (any node: Ray's pick is not determined)")
def pack_cpu_bundles(env: Env) -> Outcome:
    out = _with_group(env, [{"CPU": 1}] * 2, "PACK", expect_ready=True)
    out.pop("node_kinds")
    return out


@scenario("SPREAD of one bundle per GPU node puts each on its own node")
def spread_gpu_bundles(env: Env) -> Outcome:
    return _with_group(env, _gpu(len(env.topology.gpu_nodes)), "SPREAD", expect_ready=True)


@scenario("SPREAD of more GPU bundles than GPU nodes still succeeds, reusing nodes")
def spread_more_bundles_than_nodes(env: Env) -> Outcome:
    return _with_group(env, _gpu(len(env.topology.gpu_nodes) + 1), "SPREAD", expect_ready=True)


@scenario("SPREAD of one CPU bundle per node uses every node")
def spread_cpu_every_node(env: Env) -> Outcome:
    n = 1 + len(env.topology.gpu_nodes) + len(env.topology.cpu_nodes)
    return _with_group(env, [{"CPU": 1}] * n, "SPREAD", expect_ready=True)


@scenario("STRICT_SPREAD of one GPU bundle per GPU node is placed")
def strict_spread_fits(env: Env) -> Outcome:
    return _with_group(env, _gpu(len(env.topology.gpu_nodes)), "STRICT_SPREAD", expect_ready=True)


@scenario("STRICT_SPREAD of more GPU bundles than GPU nodes stays pending")
def strict_spread_pending(env: Env) -> Outcome:
    out = _with_group(
        env, _gpu(len(env.topology.gpu_nodes) + 1), "STRICT_SPREAD", expect_ready=False
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
    pg = placement_group(_gpu(2, 0.5), strategy="STRICT_PACK")
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
    pg = placement_group(_gpu(2), strategy="PACK")
    pg.wait(env.ready_s)
    during = ray.available_resources().get("GPU", 0.0)

    def group_keys() -> list[str]:
        return sorted(
            _ID.sub("<id>", k) for k in ray.available_resources() if "_group_" in k and "GPU" in k
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


# ---------------------------------------------------------------------- tasks in bundles


@scenario("tasks in bundles run on the bundle's node with its GPU (CUDA_VISIBLE_DEVICES)")
def tasks_in_bundles(env: Env) -> Outcome:
    pg = placement_group(_gpu(2), strategy="STRICT_PACK")
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
    pg = placement_group(_gpu(2), strategy="PACK")
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


def _settle(read: Callable[[], float], want: float, timeout_s: float = 10.0) -> float:
    """Poll ``read()`` until it equals ``want`` (Ray frees resources asynchronously)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def wait_until_idle(timeout_s: float = 10.0) -> None:
    """Wait until available resources equal the totals (a real cluster frees lazily)."""
    deadline = time.monotonic() + timeout_s
    keys = ("CPU", "GPU")
    while time.monotonic() < deadline:
        total, avail = ray.cluster_resources(), ray.available_resources()
        if all(avail.get(k, 0.0) == total.get(k, 0.0) for k in keys):
            return
        time.sleep(0.05)


def run_scenario(scenario: Scenario, env: Env | None = None) -> Outcome:
    """Run one scenario on whatever ``ray`` is connected to."""
    env = env or Env(discover())
    return scenario.run(env)
