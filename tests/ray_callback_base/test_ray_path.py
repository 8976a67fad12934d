"""Ray's own node initialization, run by the product on the fake cluster (issue 17).

``FakeRayCluster.run_ray_node_initialization`` (and ``reference_runner.ray_replica``) start
one replica by Ray's code: Serve's placement group, a replica task in it, Ray's
``get_or_create_callback``, ``run_callback``, ``initialize_node`` (one Ray task per node of
the group, running Ray's ``initialize_remote_node`` and ``download_model_files``). These
tests read what Ray did: the callback's final ``ctx``, the model path Ray left for the
engine, the tasks the cluster ran and the files on each node.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import guide_subjects as G
import pytest

from conformance.ray_observer import StepRecorder
from pytest_raycallbacks.fake_ray import FakeRayCluster
from reference_runner import TINY_MODEL_PATH
from reference_runner.ray_llm import RayConfigError, build_ray_llm_config
from reference_runner.ray_replica import (
    CHAIN_ATTRIBUTE,
    CONSTRUCT,
    INITIALIZE_NODE,
    ON_AFTER_NODE_INIT,
    ON_BEFORE_NODE_INIT,
    ReplicaPlacementError,
    ReplicaStartTimeoutError,
    replica_placement,
    run_replica,
)

RAY_DOWNLOAD_TASK = "ray.llm._internal.serve.utils.node_initialization_utils.initialize_remote_node"


def config(cls: type, kwargs: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """An llm_config mapping for ``cls`` (``callback_extra``: more callback_config fields)."""
    extra = fields.pop("callback_extra", {})
    return {
        "model_loading_config": {"model_id": "m", "model_source": TINY_MODEL_PATH},
        **fields,
        "callback_config": {
            "callback_class": f"{cls.__module__}:{cls.__qualname__}",
            "callback_kwargs": kwargs or {},
            **extra,
        },
    }


@pytest.fixture
def cluster() -> Any:
    with FakeRayCluster(gpu_nodes=2, gpus_per_node=4) as fake:
        yield fake


def test_a_guide_callback_reads_its_kwargs_through_rays_own_start(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(config(G.ReadsItsKwargs, {"greeting": "hi"}))
    assert result.error is None, result.error
    assert result.steps == (CONSTRUCT, ON_BEFORE_NODE_INIT, INITIALIZE_NODE, ON_AFTER_NODE_INIT)
    assert G.summary(result.ctx) == {"greeting": "hi"}
    assert result.ctx["placement_group"].startswith("PlacementGroup(")
    assert result.model_path == TINY_MODEL_PATH
    # Ray's initialize_node ran as Ray tasks, one per node of the group; the files are there.
    assert [t.function for t in cluster.tasks_of(RAY_DOWNLOAD_TASK)]
    assert result.node_files and all("config.json" in f for f in result.node_files.values())
    assert cluster.leaks().placement_groups == ()


def test_hooks_get_rays_llm_config(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(
        config(
            G.ReadsRaysLLMConfig,
            accelerator_type="L4",
            engine_kwargs={"tensor_parallel_size": 2, "max_model_len": 512},
        )
    )
    assert result.error is None, result.error
    seen = G.summary(result.ctx)
    assert seen["model_id"] == "m" and seen["model_source"] == TINY_MODEL_PATH
    assert seen["engine_kwargs"] == {"tensor_parallel_size": 2, "max_model_len": 512}
    assert seen["num_devices"] == 2 and seen["accelerator_type"] == "L4"
    assert seen["hf_model_id"] == TINY_MODEL_PATH
    # The fake's GPUs are not L4s: the group's hint is left out, the config keeps the type.
    assert result.dropped_hints == ("accelerator_type:L4",)
    assert len(result.bundles) == 2 and result.bundles[0]["CPU"] == 1


def test_plain_def_hooks_and_an_async_download_hook_run_as_ray_runs_them(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(config(G.PlainDefEverywhere))
    assert result.error is None, result.error
    assert G.summary(result.ctx) == {"before": "sync", "after": "sync"}


def test_run_init_node_false_skips_rays_initialize_node(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(config(G.SkipsNodeInit))
    assert result.error is None, result.error
    assert INITIALIZE_NODE not in result.steps
    assert cluster.tasks_of(RAY_DOWNLOAD_TASK) == []


def test_a_hook_error_is_rays_wrapper_with_the_hooks_error_kept_across_pickling(
    cluster: Any,
) -> None:
    result = cluster.run_ray_node_initialization(config(G.ReadsItsKwargs))  # no greeting
    assert type(result.error) is Exception
    assert "Error running callback method 'on_before_node_init' on ReadsItsKwargs" in str(
        result.error
    )
    chain = getattr(result.error, CHAIN_ATTRIBUTE)
    assert chain[1]["type"] == "KeyError" and chain[1]["message"] == "'greeting'"
    assert chain[1]["where"].split(":")[0].endswith("guide_subjects.py")


def test_raise_error_on_callback_false_logs_the_error_and_starts(
    cluster: Any, tmp_path: Path
) -> None:
    llm_config = build_ray_llm_config(
        config(G.SwallowedError, callback_extra={"raise_error_on_callback": False})
    )
    recorder = StepRecorder()
    result = run_replica(
        llm_config, observer=recorder, timeout_s=10, placement_timeout_s=5, torch_home=str(tmp_path)
    )
    assert result.error is None
    (logged,) = result.observer.logged
    assert logged[0] == ON_BEFORE_NODE_INIT and "cache server unreachable" in logged[1]


def test_an_awaiting_hook_is_bounded_per_call(cluster: Any, tmp_path: Path) -> None:
    llm_config = build_ray_llm_config(config(G.AwaitsForever))
    recorder = StepRecorder(step_timeout_s=0.3)
    result = run_replica(
        llm_config,
        observer=recorder,
        timeout_s=10,
        placement_timeout_s=5,
        torch_home=str(tmp_path),
    )
    assert type(result.error).__name__ == "StepTimeoutError"
    assert "on_before_node_init did not finish within 0.3 s" in str(result.error)


def test_a_blocking_hook_is_bounded_by_the_start_and_abandoned(
    cluster: Any, tmp_path: Path
) -> None:
    """Past its bound the start is abandoned: when the stuck hook returns at last, none of
    Ray's later steps runs for it (a cluster in this process cannot kill the thread)."""
    from conformance.ray_observer import abandon

    llm_config = build_ray_llm_config(config(G.ReturnsLate))
    recorder = StepRecorder()
    with pytest.raises(ReplicaStartTimeoutError, match=r"did not finish within 0\.5 s"):
        run_replica(
            llm_config,
            observer=recorder,
            timeout_s=0.5,
            placement_timeout_s=5,
            torch_home=str(tmp_path),
        )
    abandon(recorder.token)
    G.RELEASE.set()  # the hook returns now; the next step must not run
    time.sleep(0.5)
    assert G.AFTER_RELEASE == []


def test_a_group_the_cluster_cannot_hold_is_a_placement_error(cluster: Any, tmp_path: Path) -> None:
    llm_config = build_ray_llm_config(
        config(G.ReadsItsKwargs, engine_kwargs={"tensor_parallel_size": 64})
    )
    with pytest.raises(ReplicaPlacementError, match="cannot hold it"):
        run_replica(llm_config, timeout_s=5, placement_timeout_s=0.5, torch_home=str(tmp_path))


def test_the_replica_group_is_serves(cluster: Any) -> None:
    """Serve's replica group: Ray's engine bundles, the replica actor's CPU in bundle 0."""
    llm_config = build_ray_llm_config(
        config(
            G.ReadsItsKwargs,
            engine_kwargs={"tensor_parallel_size": 2},
            deployment_config={"ray_actor_options": {"num_cpus": 2}},
        )
    )
    bundles, strategy = replica_placement(llm_config)
    assert bundles == [{"GPU": 1, "CPU": 2}, {"GPU": 1}]
    assert strategy == "PACK"


def test_ray_refuses_an_invalid_config_in_its_own_words() -> None:
    with pytest.raises(RayConfigError, match="accelerator_type: Value error, Unsupported"):
        build_ray_llm_config(config(G.ReadsItsKwargs, accelerator_type="NOT-A-GPU"))
    with pytest.raises(RayConfigError, match="bogus: Extra inputs are not permitted"):
        build_ray_llm_config({**config(G.ReadsItsKwargs), "bogus": 1})


def test_outside_an_active_fake_cluster_the_call_says_how_to_use_it() -> None:
    from pytest_raycallbacks.fake_ray.errors import FakeRayActivationError

    with pytest.raises(FakeRayActivationError, match="inside 'with FakeRayCluster"):
        FakeRayCluster().run_ray_node_initialization(config(G.ReadsItsKwargs))


def test_a_group_a_hook_supplies_is_the_engines_and_goes_with_the_replica(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(config(G.SuppliesItsOwnGroup))
    assert result.error is None, result.error
    assert result.engine_group is not None
    assert result.ctx["placement_group"] == f"PlacementGroup({result.engine_group})"
    assert len(result.node_files) == 2  # Ray's download tasks ran on the group's two nodes
    assert cluster.leaks().placement_groups == ()  # removed with the replica's own


def test_the_reference_config_takes_every_field_of_rays_own() -> None:
    """One config file can carry Ray's fields and callbacks: the reference LLMConfig has
    every field of the installed Ray's LLMConfig (RAY_ONLY_FIELDS names those it only
    carries), and reads the model from model_loading_config."""
    from reference_runner import LLMConfig
    from reference_runner.config import RAY_ONLY_FIELDS
    from reference_runner.ray_llm import ray_llm_config_class

    rays = set(ray_llm_config_class().model_fields)  # type: ignore[attr-defined]
    assert rays - {"model_id"} <= set(LLMConfig.model_fields)
    acted_on = {"engine_kwargs", "accelerator_type", "placement_group_config", "runtime_env"}
    assert set(RAY_ONLY_FIELDS) == rays - acted_on
    both = LLMConfig.model_validate({**config(G.ReadsItsKwargs), "callbacks": ["m.cb"]})
    assert both.model_id == TINY_MODEL_PATH and both.callbacks == ["m.cb"]
