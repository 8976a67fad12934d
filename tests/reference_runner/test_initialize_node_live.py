"""initialize_node on a real local Ray cluster with logical GPUs (the session cluster of the
``gpu_ray_cluster`` fixture: a CPU head plus GPU nodes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_runner import (
    TINY_MODEL_PATH,
    InitializationError,
    InitializeNodeOutput,
    LLMConfig,
    ModelSourceError,
    NodeModelDownloadable,
    PlacementGroupTimeoutError,
    initialize_node,
)

pytestmark = pytest.mark.live

MODULE = __name__


def alive_groups() -> set[str]:
    import ray

    return {
        pg_id
        for pg_id, info in ray.util.placement_group_table().items()
        if info["state"] not in ("REMOVED",)
    }


@pytest.fixture
def ray_live(gpu_ray_cluster: Any) -> Iterator[Any]:
    """The session cluster; fails the test if it leaves a placement group behind."""
    before = alive_groups()
    outputs: list[InitializeNodeOutput] = []
    yield outputs
    import ray

    for output in outputs:
        ray.util.remove_placement_group(output.placement_group)
    leaked = alive_groups() - before
    assert not leaked, f"placement groups leaked: {leaked}"


def init(
    config: LLMConfig, outputs: list[InitializeNodeOutput], **kwargs: Any
) -> InitializeNodeOutput:
    output = asyncio.run(initialize_node(config, **kwargs))
    outputs.append(output)
    return output


def config(tmp_path: Path, **kwargs: Any) -> LLMConfig:
    return LLMConfig(model_id=TINY_MODEL_PATH, model_cache_dir=str(tmp_path), **kwargs)


def files_on(tmp_path: Path, node_id: str) -> set[str]:
    folder = tmp_path / node_id / "tiny-model"
    return (
        {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        if folder.exists()
        else set()
    )


def test_no_callbacks_default_group_and_downloads(ray_live: list[Any], tmp_path: Path) -> None:
    import ray

    output = init(config(tmp_path, engine_kwargs={"tensor_parallel_size": 2}), ray_live)
    table = ray.util.placement_group_table(output.placement_group)
    assert list(table["bundles"].values()) == [{"GPU": 1.0}, {"GPU": 1.0}]
    assert table["strategy"] == "PACK" and table["state"] == "CREATED"
    result = output.download_result
    assert result is not None and result.local_node_id == ray.get_runtime_context().get_node_id()
    workers = set(table["bundles_to_node_id"].values())
    assert set(result.nodes) == workers | {result.local_node_id}
    for node in workers:
        assert "model.safetensors" in files_on(tmp_path, node)
    if result.local_node_id not in workers:
        assert (
            result.nodes[result.local_node_id].downloadable is NodeModelDownloadable.TOKENIZER_ONLY
        )
        assert "model.safetensors" not in files_on(tmp_path, result.local_node_id)
        assert "tokenizer.json" in files_on(tmp_path, result.local_node_id)
    assert output.runtime_env is None and output.extra_init_kwargs == {}


def overriding_callback(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    from ray.util import placement_group

    if phase == "pre_download":
        return {
            "local_node_download_model": "NONE",
            "worker_node_download_model": NodeModelDownloadable.EXCLUDE_SAFETENSORS,
            "placement_group": placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_SPREAD"),
            "runtime_env": {"env_vars": {"FROM_CALLBACK": "1"}},
        }
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"enforce_eager": True}}
    return None


def test_callbacks_override_group_runtime_env_and_downloads(
    ray_live: list[Any], tmp_path: Path
) -> None:
    import ray

    before = alive_groups()
    output = init(config(tmp_path, callbacks=[f"{MODULE}:overriding_callback"]), ray_live)
    table = ray.util.placement_group_table(output.placement_group)
    assert table["strategy"] == "STRICT_SPREAD"
    assert alive_groups() - before == {output.placement_group.id.hex()}, "no default group"
    nodes = set(table["bundles_to_node_id"].values())
    assert len(nodes) == 2
    result = output.download_result
    assert result is not None and set(result.nodes) == nodes
    for node in nodes:
        assert result.nodes[node].downloadable is NodeModelDownloadable.EXCLUDE_SAFETENSORS
        assert "model.safetensors" not in files_on(tmp_path, node)
        assert "README.md" in files_on(tmp_path, node)
    assert output.runtime_env == {"env_vars": {"FROM_CALLBACK": "1"}}
    assert output.extra_init_kwargs == {"enforce_eager": True}
    origins = {e.callback for e in output.trace if "placement_group" in e.added}
    assert origins == {f"{MODULE}:overriding_callback"}


def test_skip_default_init_example_four(ray_live: list[Any], tmp_path: Path) -> None:
    import ray

    output = init(
        config(tmp_path, callbacks=["examples.full_initialization.custom_full_initialization"]),
        ray_live,
    )
    assert output.download_result is not None and output.download_result.nodes == {}
    assert output.runtime_env == {"env_vars": {"CUSTOM_INIT": "1"}}
    assert output.extra_init_kwargs == {"custom": True}
    assert ray.util.placement_group_table(output.placement_group)["state"] == "CREATED"
    assert not list(tmp_path.iterdir()), "nothing was downloaded"


def skip_without_group(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    return {"skip_default_init": True} if phase == "pre_initialization" else None


def test_skip_default_init_without_a_group_is_a_clear_error(
    ray_live: list[Any], tmp_path: Path
) -> None:
    with pytest.raises(InitializationError, match="skip_default_init=True was set"):
        init(config(tmp_path, callbacks=[f"{MODULE}:skip_without_group"]), ray_live)


def fail_after_group(phase: str, config: Any, data: dict[str, Any]) -> None:
    if phase == "post_placement_group":
        raise RuntimeError("engine config rejected")


def test_failure_after_the_group_exists_removes_it(ray_live: list[Any], tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="engine config rejected") as info:
        init(config(tmp_path, callbacks=[f"{MODULE}:fail_after_group"]), ray_live)
    assert "post_placement_group" in info.value.__notes__[0]
    # ray_live's teardown asserts that no placement group was leaked


def test_infeasible_default_group_fails_within_its_bound(
    ray_live: list[Any], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(PlacementGroupTimeoutError) as info:
        init(
            config(tmp_path, engine_kwargs={"tensor_parallel_size": 16}),
            ray_live,
            placement_group_timeout_s=1.5,
        )
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "can never be placed" in message  # the local cluster cannot grow: no waiting
    assert message.count("{'GPU': 1.0}") == 16 and "GPU: " in message


def test_missing_model_source(ray_live: list[Any], tmp_path: Path) -> None:
    bad = LLMConfig(model_id=str(tmp_path / "nope"), model_cache_dir=str(tmp_path))
    with pytest.raises(ModelSourceError, match="does not exist"):
        init(bad, ray_live)


def replaces_group_after_placement(
    phase: str, config: Any, data: dict[str, Any]
) -> dict[str, Any] | None:
    from ray.util import placement_group

    if phase == "post_placement_group":
        return {"placement_group": placement_group([{"GPU": 1}, {"GPU": 1}], "STRICT_SPREAD")}
    return None


def test_a_group_replaced_in_post_placement_group_gets_the_model_on_every_node(
    ray_live: list[Any], tmp_path: Path
) -> None:
    """Real Ray places the replacement and runs the pinned downloads on its nodes."""
    import ray

    from reference_runner.download_check import final_group_missing_model

    output = init(
        config(tmp_path, callbacks=[f"{MODULE}:replaces_group_after_placement"]), ray_live
    )
    table = ray.util.placement_group_table(output.placement_group)
    nodes = set(table["bundles_to_node_id"].values())
    assert len(nodes) == 2
    for node in nodes:
        assert "model.safetensors" in files_on(tmp_path, node), node
    assert final_group_missing_model(output, on_disk=True) == {}
