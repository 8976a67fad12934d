"""The team's own tests of its callbacks, with the pytest-raycallbacks fixtures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import ray

from reference_runner import TINY_MODEL_PATH, LLMConfig, initialize_node


def test_pin_engine_args_keeps_what_others_asked_for(callback_runner: Any) -> None:
    def other_team(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if phase == "pre_engine_init":
            return {"extra_init_kwargs": {"max_model_len": 4096}}
        return None

    runner = callback_runner(other_team, "team_callbacks.pin_engine_args")
    data = runner.run_sync("pre_engine_init", None)
    assert data["extra_init_kwargs"] == {"max_model_len": 4096, "enforce_eager": True}
    assert runner.key_origins()["extra_init_kwargs"].callback == "team_callbacks:pin_engine_args"


def test_the_placement_group_is_packed_on_one_node(fake_ray_cluster: Any, tmp_path: Path) -> None:
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        model_cache_dir=str(tmp_path),
        engine_kwargs={"tensor_parallel_size": 4},
        callbacks=["team_callbacks:ReservedPlacement"],
    )
    output = asyncio.run(initialize_node(config))
    record = fake_ray_cluster.placement_group(output.placement_group)
    assert record.strategy == "STRICT_PACK"
    assert len(set(record.bundle_nodes)) == 1
    assert len(record.bundles) == 4
    ray.util.remove_placement_group(output.placement_group)  # the engine would own it


@pytest.mark.fake_ray_cluster(gpu_nodes=2, gpus_per_node=2)
def test_a_group_too_big_for_any_node_is_reported(fake_ray_cluster: Any, tmp_path: Path) -> None:
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        model_cache_dir=str(tmp_path),
        engine_kwargs={"tensor_parallel_size": 4},
        callbacks=["team_callbacks:ReservedPlacement"],
    )
    with pytest.raises(TimeoutError, match="STRICT_PACK"):
        asyncio.run(initialize_node(config, placement_group_timeout_s=1))
