"""``reference_runner.initialize_node`` and the source design's four examples, unchanged,
on the fake cluster: downloads per node, the placement group, faults and leaks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import ray

from pytest_raycallbacks.fake_ray import FakeRayCluster
from reference_runner import (
    TINY_MODEL_PATH,
    InitializeNodeOutput,
    LLMConfig,
    PlacementGroupInfeasibleError,
    PlacementGroupTimeoutError,
    RayNotConnectedError,
    initialize_node,
)
from tests.tiny_model_files import ALL_FILES, TOKENIZER_FILES


def run(config: LLMConfig, **kwargs: Any) -> InitializeNodeOutput:
    return asyncio.run(initialize_node(config, **kwargs))


def release(out: InitializeNodeOutput) -> None:
    ray.util.remove_placement_group(out.placement_group)


def test_default_initialization(fake_ray_cluster: FakeRayCluster) -> None:
    out = run(LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 4}))
    group = fake_ray_cluster.placement_group(out.placement_group)
    assert group.bundles == ({"GPU": 1.0},) * 4
    assert group.state == "CREATED"
    assert len(set(group.bundle_node_names)) == 1 and group.bundle_node_names[0].startswith("gpu-")
    worker = group.bundle_node_names[0]
    files = fake_ray_cluster.files_by_node()
    assert files == {"head": TOKENIZER_FILES, worker: ALL_FILES}
    downloads = {d.node_name: d for d in fake_ray_cluster.downloads}
    assert downloads["head"].downloadable == "TOKENIZER_ONLY"
    assert downloads[worker].downloadable == "MODEL_AND_TOKENIZER"
    cache = fake_ray_cluster.model_cache_dir
    assert cache is not None
    assert Path(downloads[worker].path).is_relative_to(cache)
    assert (Path(downloads[worker].path) / "model.safetensors").is_file()
    result = out.download_result
    assert result is not None and result.local_node_id == fake_ray_cluster.head.node_id
    assert set(result.nodes) == {
        fake_ray_cluster.head.node_id,
        fake_ray_cluster.node(worker).node_id,
    }
    tasks = fake_ray_cluster.tasks_of("_download_on_this_node")
    assert [t.strategy for t in tasks] == ["NODE_AFFINITY", "NODE_AFFINITY"]
    assert [t.node_name for t in tasks] == ["head", worker]
    assert {t.options["num_cpus"] for t in tasks} == {0}
    release(out)
    assert not fake_ray_cluster.leaks()


def test_accelerator_type_and_explicit_bundles(fake_ray_cluster: FakeRayCluster) -> None:
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        accelerator_type="A100",
        placement_group_config={"bundles": [{"GPU": 1, "CPU": 2}] * 2, "strategy": "STRICT_SPREAD"},
    )
    out = run(config)
    group = fake_ray_cluster.placement_group(out.placement_group)
    assert group.strategy == "STRICT_SPREAD"
    assert sorted(group.bundle_node_names) == ["gpu-0", "gpu-1"]
    assert group.bundles[0] == {"accelerator_type:A100": 0.001, "GPU": 1.0, "CPU": 2.0}
    assert set(fake_ray_cluster.files_by_node()) == {"head", "gpu-0", "gpu-1"}
    release(out)


def test_infeasible_group_fails_at_once_and_is_released(fake_ray_cluster: FakeRayCluster) -> None:
    config = LLMConfig(model_id=TINY_MODEL_PATH, accelerator_type="H100")
    with pytest.raises(PlacementGroupInfeasibleError) as info:
        run(config, placement_group_timeout_s=600)
    message = str(info.value)
    assert "can never be placed" in message
    assert "accelerator_type:H100" in message and "GPU: 16" in message
    assert fake_ray_cluster.clock_skipped_s == 0  # no waiting: the cluster cannot grow
    assert fake_ray_cluster.live_placement_groups == []  # the runner removed its group


def test_busy_but_feasible_group_waits_out_its_bound(fake_ray_cluster: FakeRayCluster) -> None:
    """A group that fits the cluster but not what is free now is waited for, bounded."""
    from ray.util import placement_group, remove_placement_group

    hog = placement_group([{"GPU": 8}, {"GPU": 8}], strategy="STRICT_SPREAD")
    ray.get(hog.ready(), timeout=5)
    config = LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 2})
    with pytest.raises(PlacementGroupTimeoutError) as info:
        run(config, placement_group_timeout_s=600)
    assert not isinstance(info.value, PlacementGroupInfeasibleError)
    assert fake_ray_cluster.clock_skipped_s >= 599  # ten minutes of waiting, skipped
    remove_placement_group(hog)
    assert fake_ray_cluster.live_placement_groups == []  # the runner removed its group


def test_failed_download_on_a_worker_node(fake_ray_cluster: FakeRayCluster) -> None:
    fault = fake_ray_cluster.fail_download("gpu-0")
    with pytest.raises(OSError, match="model download failed on node gpu-0") as info:
        run(LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 2}))
    assert isinstance(info.value, ray.exceptions.RayTaskError)
    assert fault.fired == 1
    assert fake_ray_cluster.live_placement_groups == []
    assert set(fake_ray_cluster.files_by_node()) == {"head"}


def test_slow_download_hits_the_download_timeout(fake_ray_cluster: FakeRayCluster) -> None:
    fake_ray_cluster.slow_task(3600, function="_download_on_this_node", node="head")
    with pytest.raises(TimeoutError, match="did not finish within 30 s"):
        run(LLMConfig(model_id=TINY_MODEL_PATH), download_timeout_s=30)
    cancelled = fake_ray_cluster.tasks_of("_download_on_this_node")[0]
    assert cancelled.state == "CANCELLED"  # the runner cancelled it (ray.cancel, force=True)


def test_node_failure_before_initialization(fake_ray_cluster: FakeRayCluster) -> None:
    fake_ray_cluster.fail_node("gpu-0")
    out = run(LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 8}))
    assert fake_ray_cluster.placement_group(out.placement_group).bundle_node_names == ("gpu-1",) * 8
    release(out)


@pytest.mark.fake_ray_cluster(connected=False)
def test_needs_a_connected_driver(fake_ray_cluster: FakeRayCluster) -> None:
    with pytest.raises(RayNotConnectedError):
        run(LLMConfig(model_id=TINY_MODEL_PATH))
    ray.init()
    release(run(LLMConfig(model_id=TINY_MODEL_PATH)))


def test_callback_leaking_a_group_is_reported(fake_ray_cluster: FakeRayCluster) -> None:
    def leaky(phase: str, config: Any, data: dict[str, Any]) -> None:
        if phase == "post_download":
            ray.util.placement_group([{"CPU": 1}], name="forgotten")

    out = run(LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[leaky]))
    release(out)
    assert [g.name for g in fake_ray_cluster.leaks().placement_groups] == ["forgotten"]
    ray.util.remove_placement_group(ray.util.get_placement_group("forgotten"))


# ---------------------------------------------------------------------- the four examples


def test_example_logging_callback(
    fake_ray_cluster: FakeRayCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(
        LLMConfig(
            model_id=TINY_MODEL_PATH, callbacks=["examples.logging_callback.log_initialization"]
        )
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Starting: pre_initialization",
        "Starting: pre_download",
        "Completed: post_download",
        "Completed: post_placement_group",
        "Starting: pre_engine_init",
        "Completed: post_initialization",
    ]
    release(out)


def test_example_stateful_callback(fake_ray_cluster: FakeRayCluster) -> None:
    out = run(
        LLMConfig(
            model_id=TINY_MODEL_PATH,
            callbacks=["examples.stateful_callback:CustomInitializationCallback"],
        )
    )
    assert out.extra_init_kwargs == {"device": "cuda", "custom_param": "value"}
    assert out.data["custom_device"] == "cuda"
    assert fake_ray_cluster.files_by_node()["head"] == ALL_FILES  # MODEL_AND_TOKENIZER locally
    release(out)


def test_example_lambda_callback(fake_ray_cluster: FakeRayCluster) -> None:
    out = run(
        LLMConfig(model_id=TINY_MODEL_PATH, callbacks=["examples.lambda_callback.quick_flag"])
    )
    assert "custom_flag" not in out.data  # its phase "pre_init" is never emitted
    release(out)


def test_example_full_initialization(fake_ray_cluster: FakeRayCluster) -> None:
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        engine_kwargs={"tensor_parallel_size": 2},
        callbacks=["examples.full_initialization.custom_full_initialization"],
    )
    out = run(config)
    assert out.runtime_env == {"env_vars": {"CUSTOM_INIT": "1"}}
    assert out.extra_init_kwargs == {"custom": True}
    assert fake_ray_cluster.downloads == []  # skip_default_init: no default download
    (group,) = fake_ray_cluster.placement_groups
    assert group.bundles == ({"GPU": 1.0},) * 2
    assert group.state == "CREATED" and group.creator == "driver"
    release(out)


def test_examples_together_in_a_marked_cluster() -> None:
    specs = [
        "examples.logging_callback.log_initialization",
        "examples.stateful_callback:CustomInitializationCallback",
        "examples.lambda_callback.quick_flag",
    ]
    with FakeRayCluster(gpu_nodes=1, gpus_per_node=2) as cluster:
        out = run(
            LLMConfig(
                model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 2}, callbacks=specs
            )
        )
        assert cluster.placement_group(out.placement_group).bundle_node_names == ("gpu-0", "gpu-0")
        release(out)
        assert not cluster.leaks()
