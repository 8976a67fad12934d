"""A ``CallbackBase`` subclass through ``initialize_node`` on the fake cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ray
import ray_callback_subjects as S

from conformance.callbackbase_rules import run_problems
from pytest_raycallbacks.fake_ray import FakeRayCluster
from reference_runner import TINY_MODEL_PATH, LLMConfig, NodeModelDownloadable, initialize_node
from reference_runner.ray_callback_base import CallbackBaseAdapter
from reference_runner.ray_callback_ctx import CUSTOM_DATA_KEY


def test_good_class_initializes_a_node(fake_ray_cluster: FakeRayCluster, tmp_path: Path) -> None:
    hooked = CallbackBaseAdapter(S.GoodCallback, callback_kwargs={"marker": "fake"})
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        callbacks=[hooked],
        engine_kwargs={"tensor_parallel_size": 2},
        model_cache_dir=str(tmp_path),
    )
    out = asyncio.run(initialize_node(config))
    try:
        assert out.runtime_env == {"env_vars": {"GOOD": "1"}}
        assert out.data[CUSTOM_DATA_KEY] == {"marker": "fake", "after": True}
        assert out.download_result is not None
        workers = {
            node: d.downloadable
            for node, d in out.download_result.nodes.items()
            if node != out.download_result.local_node_id
        }
        assert workers and set(workers.values()) == {NodeModelDownloadable.TOKENIZER_ONLY}
        assert hooked.instance.ctx.placement_group is out.placement_group
        assert run_problems(hooked) == []
    finally:
        ray.util.remove_placement_group(out.placement_group)


def test_no_init_node_downloads_nothing(fake_ray_cluster: FakeRayCluster, tmp_path: Path) -> None:
    hooked = CallbackBaseAdapter(S.NoInitNodeCallback)
    config = LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[hooked], model_cache_dir=str(tmp_path))
    out = asyncio.run(initialize_node(config))
    try:
        assert out.download_result is not None and dict(out.download_result.nodes) == {}
    finally:
        ray.util.remove_placement_group(out.placement_group)
