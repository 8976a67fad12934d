"""The team's CallbackBase class, run by Ray's own node initialization on the fake cluster
(one call on the fixture: Serve's group, a replica task, Ray's get_or_create_callback,
run_callback and initialize_node)."""

from __future__ import annotations

from typing import Any

from reference_runner import TINY_MODEL_PATH


def test_warm_cache_on_rays_own_path(fake_ray_cluster: Any) -> None:
    result = fake_ray_cluster.run_ray_node_initialization(
        {
            "model_loading_config": {"model_id": "team-model", "model_source": TINY_MODEL_PATH},
            "callback_config": {
                "callback_class": "team_ray_callbacks:WarmCache",
                "callback_kwargs": {"bucket": "s3://team-cache"},
            },
        }
    )
    assert result.error is None, result.error
    assert result.ctx["custom_data"] == {"warmed": "s3://team-cache/team-model"}
    assert result.model_path == TINY_MODEL_PATH
    assert all("config.json" in files for files in result.node_files.values())
