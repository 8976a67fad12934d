"""The infeasibility pre-check on the live cluster (the session's simulated one): a group
that can never be placed fails at once, with the fake cluster's message; one that fits is
placed; where the cluster may grow (an autoscaler), the wait goes on and says why."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.fake_ray import FakeRayCluster
from pytest_raycallbacks.fake_ray.topology import NodeSpec
from reference_runner import TINY_MODEL_PATH, LLMConfig, PlacementGroupTimeoutError
from reference_runner.cluster_growth import CONFIG_KEY, STATE_NAMESPACE, probe_growth
from reference_runner.node_init import initialize_node
from reference_runner.placement_wait import PlacementGroupInfeasibleError

pytestmark = pytest.mark.live

ONE_GPU = {"GPU": 1.0}
CASES = [  # (strategy, bundles that fit the default topology, bundles that never do)
    ("PACK", [ONE_GPU] * 4, [ONE_GPU] * 5),
    ("SPREAD", [{"GPU": 1.0, "CPU": 1.0}] * 2, [{"GPU": 64.0}]),
    ("STRICT_PACK", [ONE_GPU] * 2, [ONE_GPU] * 3),
    ("STRICT_SPREAD", [{"CPU": 0.5}] * 3, [{"CPU": 0.5}] * 4),
]


@pytest.fixture
def simulated_default(simulated: Any) -> Any:
    """The session cluster when it has the default shape (a CPU head, 2 x 2 GPUs)."""
    shape = sorted((n.gpus, int(n.cpus)) for n in simulated.nodes())
    if shape != [(0, 2), (2, 2), (2, 2)]:
        pytest.skip(f"needs the default simulated topology; this one is {shape}")
    return simulated


def config(tmp_path: Path, bundles: list[Mapping[str, float]], strategy: str) -> LLMConfig:
    return LLMConfig(
        model_id=TINY_MODEL_PATH,
        model_cache_dir=str(tmp_path),
        placement_group_config={"bundles": [dict(b) for b in bundles], "strategy": strategy},
    )


def init(llm_config: LLMConfig, **kwargs: Any) -> Any:
    return asyncio.run(initialize_node(llm_config, **kwargs))


def fake_like(cluster: Any) -> FakeRayCluster:
    """A fake cluster with the live cluster's nodes (same totals, same order)."""
    specs = []
    for node in cluster.nodes():
        extra = {
            k: v
            for k, v in node.resources.items()
            if k not in ("CPU", "GPU", "memory", "object_store_memory")
            and not k.startswith("node:")
        }
        specs.append(
            NodeSpec(num_cpus=node.cpus, num_gpus=node.gpus, resources=extra, head=node.is_head)
        )
    return FakeRayCluster(specs)


def comparable(message: str) -> str:
    """The message without what differs between two clusters of the same shape: the group
    id, the current totals and why the cluster cannot grow."""
    message = re.sub(r"PlacementGroupID\([0-9a-f]+\)", "PlacementGroupID(...)", message)
    message = re.sub(r"The cluster has .*? available, and it cannot grow \(.*?\), so", "", message)
    return message


@pytest.mark.parametrize(("strategy", "fits", "never"), CASES)
def test_precheck_per_strategy_on_live_and_fake(
    simulated_default: Any,
    tmp_path: Path,
    strategy: str,
    fits: list[Mapping[str, float]],
    never: list[Mapping[str, float]],
) -> None:
    import ray

    output = init(config(tmp_path, fits, strategy), placement_group_timeout_s=60)
    ray.util.remove_placement_group(output.placement_group)

    started = time.monotonic()
    with pytest.raises(PlacementGroupInfeasibleError) as live:
        init(config(tmp_path, never, strategy), placement_group_timeout_s=60)
    assert time.monotonic() - started < 10  # the local download, then no wait at all
    live_message = str(live.value)
    assert "can never be placed" in live_message and "Ray's monitor runs read-only" in live_message

    with fake_like(simulated_default), pytest.raises(PlacementGroupInfeasibleError) as fake:
        init(config(tmp_path, never, strategy), placement_group_timeout_s=60)
    assert comparable(str(fake.value)) == comparable(live_message)


def test_the_kits_actor_path_fails_at_once(simulated_default: Any) -> None:
    spec = LLMConfig(model_id=TINY_MODEL_PATH, placement_group_config={"bundles": [{"GPU": 64.0}]})
    started = time.monotonic()
    with pytest.raises(PlacementGroupInfeasibleError, match="no node can hold bundle 0"):
        simulated_default.run_initialize_node(spec, placement_group_timeout_s=60)
    assert time.monotonic() - started < 20  # an actor's start, but not the 60 s bound


@pytest.fixture
def autoscaling_config(cluster: Any) -> Iterator[None]:
    """Publish an autoscaling config (as an autoscaler does) for the test's duration."""
    from ray.core.generated import autoscaler_pb2
    from ray.experimental import internal_kv

    published = autoscaler_pb2.ClusterConfig()
    group = published.node_group_configs.add()
    group.name, group.max_count = "gpu-workers", 4
    internal_kv._internal_kv_put(
        CONFIG_KEY, published.SerializeToString(), overwrite=True, namespace=STATE_NAMESPACE
    )
    try:
        yield
    finally:
        internal_kv._internal_kv_del(CONFIG_KEY, namespace=STATE_NAMESPACE)


def test_a_cluster_that_may_grow_is_waited_for(
    simulated_default: Any, autoscaling_config: None, tmp_path: Path
) -> None:
    import ray

    assert probe_growth(ray).verdict == "grows"
    started = time.monotonic()
    with pytest.raises(PlacementGroupTimeoutError) as info:
        init(config(tmp_path, [{"GPU": 64.0}], "PACK"), placement_group_timeout_s=1.5)
    assert time.monotonic() - started >= 1.0  # Ray waits whole seconds
    assert not isinstance(info.value, PlacementGroupInfeasibleError)
    message = str(info.value)
    assert "was not ready after 1.5 s" in message
    assert "no node can hold bundle 0 {GPU: 64}" in message
    assert "waited for because the cluster may grow: an autoscaler may add nodes of the " in (
        message
    )
    assert "gpu-workers (up to 4)" in message


def test_the_simulated_cluster_cannot_grow(simulated: Any) -> None:
    import ray

    growth = probe_growth(ray)
    assert growth.verdict == "fixed", growth
