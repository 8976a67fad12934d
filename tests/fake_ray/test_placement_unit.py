"""Placement and resource arithmetic, property-tested: a plan never overcommits a node,
honours its strategy, and is found whenever the cluster's totals allow a simple one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_raycallbacks.fake_ray.placement import full_gpu_capacity, label_match, plan
from pytest_raycallbacks.fake_ray.resources import (
    SCALE,
    allocate_gpus,
    format_resources,
    from_units,
    gpu_ids,
    release_gpus,
    to_units,
)
from tests.fake_nodes import make_bundle, make_node

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


nodes_st = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=8)
bundles_st = st.lists(
    st.tuples(st.sampled_from([0, 0.5, 1, 2]), st.sampled_from([0, 0.25, 0.5, 1, 2, 4])).filter(
        lambda b: b[0] or b[1]
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(nodes_st, bundles_st, st.sampled_from(STRATEGIES))
def test_plans_respect_capacity_and_strategy(
    node_shapes: list[tuple[int, int]], bundle_shapes: list[tuple[float, float]], strategy: str
) -> None:
    nodes = [make_node(i, c, g) for i, (c, g) in enumerate(node_shapes)]
    bundles = [make_bundle(i, c, g) for i, (c, g) in enumerate(bundle_shapes)]
    placed = plan(bundles, strategy, nodes)
    if placed is None:
        return
    assert len(placed) == len(bundles)
    for node in nodes:
        mine = [b for b, n in zip(bundles, placed, strict=True) if n is node]
        for resource in ("CPU", "GPU"):
            assert sum(b.demand.get(resource, 0) for b in mine) <= node.total.get(resource, 0)
        devices = list(node.gpu_capacity)
        for b in mine:  # the devices can really hold them, in some order
            assert allocate_gpus(devices, b.demand.get("GPU", 0)) is not None or any(
                allocate_gpus(list(node.gpu_capacity), x.demand.get("GPU", 0)) is None for x in mine
            )
    if strategy == "STRICT_PACK":
        assert len({n.index for n in placed}) == 1
    if strategy == "STRICT_SPREAD":
        assert len({n.index for n in placed}) == len(bundles)
    assert plan(bundles, strategy, nodes, use_totals=True) is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6))
def test_spread_finds_a_node_per_bundle_when_there_are_enough(nodes: int, bundles: int) -> None:
    cluster = [make_node(i, 8, 8) for i in range(nodes)]
    group = [make_bundle(i, 1, 1) for i in range(bundles)]
    strict = plan(group, "STRICT_SPREAD", cluster)
    assert (strict is not None) == (bundles <= nodes)
    loose = plan(group, "SPREAD", cluster)
    assert loose is not None
    assert len({n.index for n in loose}) == min(nodes, bundles)
    packed = plan(group, "PACK", cluster)
    assert packed is not None and len({n.index for n in packed}) == 1


def test_dead_nodes_are_never_used() -> None:
    a, b = make_node(0, 4, 4), make_node(1, 4, 4)
    a.alive = False
    assert plan([make_bundle(0, 1, 1)], "PACK", [a, b]) == [b]
    assert plan([make_bundle(0, 1, 1)] * 2, "STRICT_SPREAD", [a, b]) is None


def test_label_selectors() -> None:
    labels = {"zone": "a", "accel": "A100"}
    assert label_match(labels, {"zone": "a"})
    assert not label_match(labels, {"zone": "!a"})
    assert label_match(labels, {"accel": "in(A100,H100)"})
    assert not label_match(labels, {"accel": "!in(A100,H100)"})
    assert label_match(labels, {"missing": "!x"})
    assert not label_match(labels, {"missing": "x"})


def test_fixed_point_units_and_gpu_devices() -> None:
    assert to_units({"GPU": 0.001, "CPU": 0}) == {"GPU": 10}
    assert from_units({"GPU": 9990}) == {"GPU": 0.999}
    devices = [SCALE] * 4
    whole = allocate_gpus(devices, 2 * SCALE)
    assert gpu_ids(whole or []) == [0, 1]
    half = allocate_gpus(devices, SCALE // 2)
    other_half = allocate_gpus(devices, SCALE // 2)
    assert gpu_ids(half or []) == gpu_ids(other_half or []) == [2]
    assert allocate_gpus(devices, 2 * SCALE) is None  # only device 3 is whole
    release_gpus(devices, whole or [])
    assert devices == [SCALE, SCALE, 0, SCALE]
    assert full_gpu_capacity(1.5) == [SCALE, SCALE // 2]
    assert format_resources({"GPU": 20000, "node:1.2.3.4": 10000, "memory": 5}) == "{GPU: 2}"
