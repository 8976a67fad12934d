"""Physical GPUs: what a worker sees inside a GPU bundle.

Selected by the ``physical_gpu`` marker and meant to run on a GPU machine with
``scripts/run_physical_gpu_tests.sh`` (``--raycallbacks-gpus=physical``, which fails the
session's cluster when there are no GPUs). In a session whose cluster simulates its GPUs
(CI on CPU machines) they skip, saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [pytest.mark.live, pytest.mark.physical_gpu]


@pytest.fixture
def physical(gpu_ray_cluster: Any) -> Iterator[Any]:
    if not gpu_ray_cluster.physical:
        pytest.skip(
            f"needs physical GPUs; this session's cluster is {gpu_ray_cluster.mode} "
            "(run scripts/run_physical_gpu_tests.sh on a GPU machine)"
        )
    with gpu_ray_cluster.leak_check():
        yield gpu_ray_cluster


def test_the_cluster_has_the_gpus_this_machine_has(physical: Any) -> None:
    assert physical.total_gpus > 0
    assert physical.describe()["physical"] is True
    if physical.mode == "physical":
        assert physical.gpu_detection is not None
        assert physical.total_gpus == physical.gpu_detection.count


@pytest.mark.parametrize("count", [1, 2])
def test_a_bundle_sees_exactly_the_gpus_ray_assigned(physical: Any, count: int) -> None:
    node = max(physical.nodes(), key=lambda n: n.gpus)
    if node.gpus < count:
        pytest.skip(f"needs a node with {count} GPUs; the largest has {node.gpus}")
    ray = physical.ray
    group = ray.util.placement_group([{"GPU": count}])
    try:
        physical.wait_placement_group(group)
        view = physical.gpu_view(num_gpus=count, placement_group=group, bundle_index=0)
        assert len(view.visible_devices) == count
        assert set(view.visible_devices) == set(view.place.ray_gpu_ids)
        if physical.gpu_detection is not None and physical.mode == "physical":
            assert set(view.visible_devices) <= set(physical.gpu_detection.ids)
        if view.torch_device_count is not None:
            assert view.torch_device_count == count
    finally:
        ray.util.remove_placement_group(group)


def test_two_bundles_get_disjoint_gpus(physical: Any) -> None:
    node = max(physical.nodes(), key=lambda n: n.gpus)
    if node.gpus < 2:
        pytest.skip("needs a node with 2 GPUs")
    ray = physical.ray
    group = ray.util.placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_PACK")
    try:
        physical.wait_placement_group(group)
        views = [
            physical.gpu_view(num_gpus=1, placement_group=group, bundle_index=i) for i in (0, 1)
        ]
        devices = [set(v.visible_devices) for v in views]
        assert all(len(d) == 1 for d in devices)
        assert devices[0].isdisjoint(devices[1])
    finally:
        ray.util.remove_placement_group(group)


def test_initialize_node_places_its_default_group_on_real_gpus(physical: Any) -> None:
    result = physical.run_initialize_node(["examples.logging_callback.log_initialization"])
    assert result.bundles == ({"GPU": 1.0},)
    gpu_nodes = {n.node_id for n in physical.nodes() if n.gpus}
    assert set(result.nodes) <= gpu_nodes
