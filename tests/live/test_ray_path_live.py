"""Ray's own node initialization on the live cluster, one call on ``gpu_ray_cluster``
(issue 17): Serve's placement group, a replica task in it, Ray's ``get_or_create_callback``,
``run_callback`` and ``initialize_node``, whose download tasks are real Ray tasks on real
workers; vLLM's argument classes and torch's cache folder stood in on every worker by the
job's setup hook where they are missing."""

from __future__ import annotations

from typing import Any

import pytest

from reference_runner import TINY_MODEL_PATH

pytestmark = pytest.mark.live

WARM = "examples.serve.warm_cache:WarmCacheCallback"


def deployment(**fields: Any) -> dict[str, Any]:
    return {
        "model_loading_config": {"model_id": "live-model", "model_source": TINY_MODEL_PATH},
        "callback_config": {"callback_class": WARM, "callback_kwargs": {"cache_dir": "/c"}},
        **fields,
    }


def test_rays_node_initialization_on_the_live_cluster(cluster: Any) -> None:
    result = cluster.run_ray_node_initialization(deployment(accelerator_type="L4"))
    assert result.error is None, result.error
    assert result.steps[-1] == "on_after_node_init"
    assert result.ctx["custom_data"]["cache_dir"] == "/c"
    assert result.model_path == TINY_MODEL_PATH
    assert result.dropped_hints == ("accelerator_type:L4",)  # logical GPUs have no type
    assert result.node_files and all("config.json" in f for f in result.node_files.values())


def test_a_hook_error_comes_back_as_rays_with_the_hooks_own_error(cluster: Any) -> None:
    config = deployment()
    config["callback_config"] = {
        "callback_class": "ray.llm._internal.common.callbacks.cloud_downloader:CloudDownloader",
        "callback_kwargs": {"paths": "not-a-list"},
    }
    result = cluster.run_ray_node_initialization(config)
    assert result.error is not None
    assert result.steps == ("get_or_create_callback",)  # its constructor validates the kwargs
