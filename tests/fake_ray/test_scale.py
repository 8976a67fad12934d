"""A cluster of 10,000 nodes of 8 GPUs in memory (timings are in benchmarks/, not here)."""

from __future__ import annotations

import ray

from pytest_raycallbacks.fake_ray import FakeRayCluster


def test_ten_thousand_nodes_strict_spread_512() -> None:
    with FakeRayCluster(gpu_nodes=10_000, model_cache_dir=False) as cluster:
        assert ray.cluster_resources()["GPU"] == 80_000.0
        groups = [
            ray.util.placement_group([{"GPU": 1}] * 512, strategy="STRICT_SPREAD") for _ in range(3)
        ]
        assert all(g.wait(0) for g in groups)
        for g in groups:
            nodes = ray.util.placement_group_table(g)["bundles_to_node_id"].values()
            assert len(set(nodes)) == 512
        packed = ray.util.placement_group([{"GPU": 8}] * 64, strategy="PACK")
        assert packed.wait(0)
        assert len(set(cluster.placement_group(packed).bundle_nodes)) == 64
        assert ray.available_resources()["GPU"] == 80_000 - 3 * 512 - 512
        too_many = ray.util.placement_group([{"GPU": 1}] * 10_001, strategy="STRICT_SPREAD")
        assert not too_many.wait(1)
        assert ray.util.placement_group_table(too_many)["stats"]["scheduling_state"] == "INFEASIBLE"
        for g in [*groups, packed, too_many]:
            ray.util.remove_placement_group(g)
        assert ray.available_resources()["GPU"] == 80_000.0
