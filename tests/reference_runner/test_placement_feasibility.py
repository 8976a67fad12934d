"""The infeasibility pre-check: which groups can never be placed (per strategy), why, the
cluster-growth verdicts, and ``initialize_node`` failing at once on the fake cluster with
the message a live cluster gives too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_raycallbacks.fake_ray import FakeRayCluster
from pytest_raycallbacks.fake_ray.model import Bundle
from pytest_raycallbacks.fake_ray.placement import plan
from pytest_raycallbacks.fake_ray.resources import to_units
from reference_runner import TINY_MODEL_PATH, LLMConfig, PlacementGroupTimeoutError
from reference_runner.cluster_growth import growth_from_config, growth_from_status, probe_growth
from reference_runner.node_init import initialize_node
from reference_runner.placement_feasibility import (
    NodeCapacity,
    never_placed,
    why_never_placed,
)
from reference_runner.placement_wait import PlacementGroupInfeasibleError
from tests.fake_nodes import make_node

#: The live cluster's default simulated shape: a CPU head, two nodes of 2 GPUs.
CLUSTER = [
    NodeCapacity("head", {"CPU": 2.0, "memory": 1e9, "node:10.0.0.1": 1.0}),
    NodeCapacity("gpu-a", {"CPU": 2.0, "GPU": 2.0, "accelerator_type:A100": 1.0}),
    NodeCapacity("gpu-b", {"CPU": 2.0, "GPU": 2.0}, {"zone": "b"}),
]


def gpus(n: int, each: float = 1.0, **extra: float) -> list[dict[str, float]]:
    return [{"GPU": float(each), **extra} for _ in range(n)]


FITS = [
    (gpus(4), "PACK"),
    (gpus(4, CPU=1), "SPREAD"),
    (gpus(2), "STRICT_PACK"),
    ([{"CPU": 1.0}] * 3, "STRICT_SPREAD"),
    (gpus(2), "STRICT_SPREAD"),
    (gpus(4, 0.5), "STRICT_PACK"),  # two halves per device
    (gpus(4, 0.6), "PACK"),  # one 0.6 per device, four devices
    ([{"GPU": 1.0, "accelerator_type:A100": 0.001}], "PACK"),
]
NEVER = [
    (gpus(1, 64), "PACK", "no node can hold bundle 0 {GPU: 64} (the largest node has GPU: 2)"),
    (gpus(5), "PACK", "together its bundles need {GPU: 5}, more than the {GPU: 4} all nodes"),
    (gpus(3, 2), "SPREAD", "together its bundles need {GPU: 6}, more than the {GPU: 4}"),
    (gpus(3), "STRICT_PACK", "no node can hold {GPU: 3} (the largest node has GPU: 2)"),
    ([{"CPU": 1.0}] * 4, "STRICT_SPREAD", "it needs 4 nodes that can hold one of its bundles"),
    (gpus(3), "STRICT_SPREAD", "and the cluster's 3 node(s) can give only 2"),
    (gpus(2, 2, CPU=2), "STRICT_PACK", "no node can hold {CPU: 4, GPU: 4} (the largest node"),
    (
        [{"GPU": 1.0, "accelerator_type:H100": 0.001}],
        "PACK",
        "no node can hold bundle 0 {GPU: 1, accelerator_type:H100: 0.001} (the largest "
        "node has GPU: 2, accelerator_type:H100: 0)",
    ),
]


@pytest.mark.parametrize(("bundles", "strategy"), FITS)
def test_groups_that_fit_the_totals(bundles: list[dict[str, float]], strategy: str) -> None:
    assert why_never_placed(bundles, strategy, CLUSTER) is None


@pytest.mark.parametrize(("bundles", "strategy", "reason"), NEVER)
def test_groups_that_never_fit_say_why(
    bundles: list[dict[str, float]], strategy: str, reason: str
) -> None:
    found = why_never_placed(bundles, strategy, CLUSTER)
    assert found is not None and reason in found, found


def test_strict_spread_is_a_matching_not_a_greedy_walk() -> None:
    # Largest first, a greedy walk gives the CPU bundle the node with X, and then the X
    # bundle has none left; a node of its own for each bundle does exist.
    nodes = [NodeCapacity("with-x", {"CPU": 1.0, "X": 1.0}), NodeCapacity("cpu", {"CPU": 1.0})]
    assert why_never_placed([{"X": 1.0}, {"CPU": 1.0}], "STRICT_SPREAD", nodes) is None
    found = why_never_placed([{"X": 1.0}, {"X": 1.0}], "STRICT_SPREAD", nodes)
    assert found is not None and "can give only 1" in found


def test_nodes_alike_but_for_their_own_resources_are_matched_as_one_class() -> None:
    # Every Ray node carries a resource of its own (node:<ip>); the matching must group
    # nodes by what the bundles ask for, else thousands of nodes make it quadratic.
    nodes = [
        NodeCapacity(f"n{i}", {"CPU": 8.0, "GPU": 8.0, f"node:10.0.{i // 250}.{i % 250}": 1.0})
        for i in range(3000)
    ]
    assert why_never_placed(gpus(3000), "STRICT_SPREAD", nodes) is None
    found = why_never_placed(gpus(3001), "STRICT_SPREAD", nodes)
    assert found is not None and "can give only 3000" in found
    pinned = [{"GPU": 1.0, "node:10.0.0.7": 0.001}, {"GPU": 1.0, "node:10.0.0.7": 0.001}]
    found = why_never_placed(pinned, "STRICT_SPREAD", nodes)
    assert found is not None and "can give only 1" in found


def test_what_only_a_search_could_tell_is_left_to_the_bounded_wait() -> None:
    # Three 0.6 GPU bundles on one 2-GPU node: 1.8 <= 2, but a fraction cannot span two
    # devices. Ray itself calls such a group NO_RESOURCES, not INFEASIBLE; so does the rule.
    assert why_never_placed(gpus(3, 0.6), "STRICT_PACK", CLUSTER) is None
    assert why_never_placed(gpus(5, 0.6), "SPREAD", CLUSTER) is None


def test_label_selectors_and_an_empty_cluster() -> None:
    assert why_never_placed(gpus(1), "PACK", CLUSTER, [{"zone": "b"}]) is None
    found = why_never_placed(gpus(1), "PACK", CLUSTER, [{"zone": "x"}])
    assert found == "no node matches bundle 0 {GPU: 1}'s label selector {'zone': 'x'}"
    assert why_never_placed(gpus(1), "PACK", []) == "the cluster has no alive node"
    with pytest.raises(ValueError, match="unknown placement strategy 'TIGHT'"):
        why_never_placed(gpus(1), "TIGHT", CLUSTER)


nodes_st = st.lists(
    st.tuples(st.integers(0, 8), st.integers(0, 4)).flatmap(
        lambda t: st.tuples(
            st.just(t[0]), st.just(t[1]), st.integers(0, t[0]), st.integers(0, t[1])
        )
    ),
    min_size=1,
    max_size=6,
)
bundles_st = st.lists(
    st.tuples(st.sampled_from([0, 0.5, 1, 2]), st.sampled_from([0, 0.25, 0.5, 1, 2])).filter(
        lambda b: b[0] or b[1]
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(nodes_st, bundles_st, st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]))
def test_a_group_placeable_now_is_never_called_infeasible(
    shapes: list[tuple[int, int, int, int]], shapes_b: list[tuple[float, float]], strategy: str
) -> None:
    """Soundness: whatever the cluster holds now, a group the fake's planner places (now,
    or on the empty nodes) passes the pre-check, and the pre-check reads floats (a live
    cluster's) as the fake's units alike."""
    nodes = [make_node(i, *shape) for i, shape in enumerate(shapes)]
    specs = [{k: v for k, v in (("CPU", c), ("GPU", g)) if v} for c, g in shapes_b]
    bundles = [Bundle(index=i, demand=to_units(b), spec=b) for i, b in enumerate(specs)]
    capacities = [
        NodeCapacity(n.node_id, {"CPU": c, "GPU": g})
        for n, (c, g, _, _) in zip(nodes, shapes, strict=True)
    ]
    verdict = why_never_placed(specs, strategy, capacities)
    assert verdict == never_placed(bundles, strategy, nodes)
    if plan(bundles, strategy, nodes) is not None or plan(
        bundles, strategy, nodes, use_totals=True
    ):
        assert verdict is None


# ---------------------------------------------------------------------- cluster growth


def readonly_status(*node_ids: str) -> dict[str, Any]:
    return {
        "load_metrics_report": {},
        "autoscaler_report": {"node_type_mapping": {n: f"node_{n}" for n in node_ids}},
    }


def test_growth_from_the_monitor_status() -> None:
    assert growth_from_status(readonly_status("aa", "bb")).verdict == "fixed"
    launched = {"autoscaler_report": {"node_type_mapping": {"aa": "node_aa", "10.0.0.2": "gpu"}}}
    grows = growth_from_status(launched)
    assert grows.verdict == "grows" and "gpu" in grows.reason
    assert growth_from_status({"load_metrics_report": {}}).verdict == "unknown"
    empty = {"autoscaler_report": {"node_type_mapping": None}}
    assert growth_from_status(empty).verdict == "unknown"


def test_growth_from_an_autoscaling_config() -> None:
    from ray.core.generated import autoscaler_pb2

    config = autoscaler_pb2.ClusterConfig()
    assert growth_from_config(config.SerializeToString()) is None
    group = config.node_group_configs.add()
    group.name, group.max_count = "gpu-workers", 4
    grows = growth_from_config(config.SerializeToString())
    assert grows is not None and grows.verdict == "grows"
    assert "gpu-workers (up to 4)" in grows.reason
    group.max_count = 0
    fixed = growth_from_config(config.SerializeToString())
    assert fixed is not None and fixed.verdict == "fixed"


def test_growth_of_a_stand_in_and_of_an_unreadable_cluster() -> None:
    class Context:
        gcs_address = "fake-ray://x"

    class StandIn:
        @staticmethod
        def get_runtime_context() -> Context:
            return Context()

    assert probe_growth(StandIn).verdict == "fixed"
    Context.gcs_address = "127.0.0.1:1"  # nothing listens there: cannot be read
    unknown = probe_growth(StandIn)
    assert unknown.verdict == "unknown" and "127.0.0.1:1" in unknown.reason


# ---------------------------------------------------------------------- on the fake


def run(config: LLMConfig, **kwargs: Any) -> Any:
    return asyncio.run(initialize_node(config, **kwargs))


def messages_of(cluster: FakeRayCluster, config: LLMConfig) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(PlacementGroupInfeasibleError) as info:
        run(config, placement_group_timeout_s=600)
    assert cluster.live_placement_groups == []  # the runner removed its group
    return str(info.value), time.monotonic() - started


@pytest.mark.parametrize(
    ("placement", "reason"),
    [
        ({"bundles": gpus(1, 64)}, "no node can hold bundle 0 {GPU: 64}"),
        ({"bundles": gpus(3), "strategy": "STRICT_PACK"}, "no node can hold {GPU: 3}"),
        ({"bundles": gpus(3), "strategy": "STRICT_SPREAD"}, "can give only 2"),
        ({"bundles": gpus(5)}, "together its bundles need {GPU: 5}, more than the {GPU: 4}"),
    ],
)
def test_initialize_node_fails_at_once_on_the_fake(
    placement: Mapping[str, Any], reason: str
) -> None:
    with FakeRayCluster(gpu_nodes=2, gpus_per_node=2, cpus_per_node=2) as cluster:
        config = LLMConfig(model_id=TINY_MODEL_PATH, placement_group_config=dict(placement))
        message, took = messages_of(cluster, config)
        assert cluster.clock_skipped_s == 0  # not even the fake's clock waited
    assert took < 5
    assert isinstance(PlacementGroupInfeasibleError(""), PlacementGroupTimeoutError)
    assert message.startswith("placement group PlacementGroupID(")
    assert f"can never be placed: it asks for bundles {list(placement['bundles'])}" in message
    assert reason in message
    assert "it cannot grow (fake-ray://" in message and "(the bound was 600 s)" in message


def test_a_group_that_waits_for_resources_still_waits_its_bound() -> None:
    with FakeRayCluster(gpu_nodes=2, gpus_per_node=2, cpus_per_node=2) as cluster:
        import ray

        holder = ray.util.placement_group(gpus(4))
        assert holder.wait(1)
        with pytest.raises(PlacementGroupTimeoutError) as info:
            run(LLMConfig(model_id=TINY_MODEL_PATH), placement_group_timeout_s=30)
        assert not isinstance(info.value, PlacementGroupInfeasibleError)
        assert "was not ready after 30 s" in str(info.value)
        assert cluster.clock_skipped_s >= 29  # it fits the totals: the bound was waited
        ray.util.remove_placement_group(holder)
