"""initialize_node on the fake cluster: the final placement group's nodes hold the model,
rejected writes never reach the system, and a hung callback cannot hang initialization.

Files are checked where they really are: each fake node's model folder
(``<model_cache_dir>/<node id>/tiny-model``), the download tasks the fake ran, and
``download_result``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from pytest_raycallbacks.fake_ray import FakeRayCluster
from reference_runner import (
    TINY_MODEL_PATH,
    CallbackReturnError,
    CallbackTimeoutError,
    InitializeNodeOutput,
    LLMConfig,
    NodeModelDownloadable,
    initialize_node,
)
from reference_runner.download_check import final_group_missing_model, placement_group_node_ids
from tests.tiny_model_files import ALL_FILES


def run(config: LLMConfig, **kwargs: Any) -> InitializeNodeOutput:
    return asyncio.run(initialize_node(config, **kwargs))


def files_in_folder(cluster: FakeRayCluster, node_id: str) -> set[str]:
    """The model files on a fake node's disk (its folder in the model cache)."""
    assert cluster.model_cache_dir is not None
    folder = Path(cluster.model_cache_dir) / node_id / "tiny-model"
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def downloads_per_node(cluster: FakeRayCluster) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for record in cluster.downloads:
        out.setdefault(record.node_id, []).append(record.downloadable)
    return out


def spread_group() -> Any:
    return ray.util.placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_SPREAD")


# Two differently written callbacks that replace the group: one returns it in
# post_placement_group, one writes it into data in place in pre_engine_init.


def returns_a_new_group_in_post_placement_group(
    phase: str, config: Any, data: dict[str, Any]
) -> dict[str, Any] | None:
    if phase == "post_placement_group":
        return {"placement_group": spread_group()}
    return None


def writes_a_new_group_in_place_in_pre_engine_init(
    phase: str, config: Any, data: dict[str, Any]
) -> None:
    if phase == "pre_engine_init":
        data["placement_group"] = spread_group()


@pytest.mark.parametrize(
    "callback",
    [returns_a_new_group_in_post_placement_group, writes_a_new_group_in_place_in_pre_engine_init],
    ids=["returned-in-post_placement_group", "in-place-in-pre_engine_init"],
)
def test_every_node_of_a_replacing_group_holds_the_model(
    fake_ray_cluster: FakeRayCluster, callback: Any
) -> None:
    out = run(LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[callback]))
    final = fake_ray_cluster.placement_group(out.placement_group)
    assert final.strategy == "STRICT_SPREAD" and final.state == "CREATED"
    final_nodes = set(final.bundle_nodes)
    assert len(final_nodes) == 2
    head = fake_ray_cluster.head.node_id
    for node in final_nodes:
        assert files_in_folder(fake_ray_cluster, node) == ALL_FILES, node
    result = out.download_result
    assert result is not None and set(result.nodes) == final_nodes | {head}
    assert all(
        result.nodes[n].downloadable is NodeModelDownloadable.MODEL_AND_TOKENIZER
        for n in final_nodes
    )
    per_node = downloads_per_node(fake_ray_cluster)
    assert per_node[head] == ["TOKENIZER_ONLY"]
    assert all(per_node[n] == ["MODEL_AND_TOKENIZER"] for n in final_nodes), (
        "each node of the new group downloaded once: the node the default group already "
        "served was not downloaded onto again"
    )
    assert final_group_missing_model(out, on_disk=True) == {}
    (default,) = [g for g in fake_ray_cluster.placement_groups if g.strategy == "PACK"]
    assert default.state == "REMOVED", "the replaced default group is removed"
    ray.util.remove_placement_group(out.placement_group)
    assert not fake_ray_cluster.leaks()


def test_the_new_group_is_served_before_pre_engine_init_sees_it(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    seen: dict[str, Any] = {}

    def looks(phase: str, config: Any, data: dict[str, Any]) -> None:
        if phase == "pre_engine_init":
            seen["nodes"] = set(placement_group_node_ids(data["placement_group"]))
            seen["downloaded"] = set(data["download_result"].nodes)

    out = run(
        LLMConfig(
            model_id=TINY_MODEL_PATH,
            callbacks=[returns_a_new_group_in_post_placement_group, looks],
        )
    )
    assert seen["nodes"] and seen["nodes"] <= seen["downloaded"]
    ray.util.remove_placement_group(out.placement_group)


def widens_the_choice_after_the_first_round(
    phase: str, config: Any, data: dict[str, Any]
) -> dict[str, Any] | None:
    if phase == "pre_download":
        return {"worker_node_download_model": "EXCLUDE_SAFETENSORS"}
    if phase == "post_placement_group":
        data["worker_node_download_model"] = NodeModelDownloadable.MODEL_AND_TOKENIZER
    return None


def test_a_choice_widened_later_is_downloaded_onto_the_same_group(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    out = run(
        LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[widens_the_choice_after_the_first_round])
    )
    (node,) = set(fake_ray_cluster.placement_group(out.placement_group).bundle_nodes)
    assert downloads_per_node(fake_ray_cluster)[node] == [
        "EXCLUDE_SAFETENSORS",
        "MODEL_AND_TOKENIZER",
    ]
    assert files_in_folder(fake_ray_cluster, node) == ALL_FILES
    assert final_group_missing_model(out, on_disk=True) == {}
    ray.util.remove_placement_group(out.placement_group)


def test_an_unchanged_group_is_served_once(fake_ray_cluster: FakeRayCluster) -> None:
    out = run(LLMConfig(model_id=TINY_MODEL_PATH, engine_kwargs={"tensor_parallel_size": 2}))
    assert len(fake_ray_cluster.downloads) == 2  # the head, and the group's one node
    waits = [c for c in fake_ray_cluster.calls if c.api == "PlacementGroup.wait"]
    assert len(waits) == 1, "served three times, waited for once"
    ray.util.remove_placement_group(out.placement_group)


def skips_and_replaces(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    if phase == "pre_initialization":
        return {"skip_default_init": True}
    if phase in ("post_download", "post_placement_group"):
        return {"placement_group": spread_group()}
    return None


def test_skip_default_init_downloads_nothing_on_any_group(fake_ray_cluster: FakeRayCluster) -> None:
    out = run(LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[skips_and_replaces]))
    assert fake_ray_cluster.downloads == []
    assert out.download_result is not None and out.download_result.nodes == {}
    assert final_group_missing_model(out) == {}  # the rule does not apply
    ray.util.remove_placement_group(out.placement_group)
    assert not fake_ray_cluster.leaks(), "the group replaced in post_placement_group is removed"


def test_final_group_missing_model_reports_an_unserved_group(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    """The checker is not vacuous: a result that lacks the group's nodes is reported."""
    out = run(LLMConfig(model_id=TINY_MODEL_PATH))
    assert final_group_missing_model(out) == {}
    group = spread_group()
    assert group.wait(10)
    moved = InitializeNodeOutput(
        placement_group=group,
        runtime_env=None,
        extra_init_kwargs={},
        download_result=out.download_result,
        data=out.data,
    )
    missing = final_group_missing_model(moved)
    served = set(fake_ray_cluster.placement_group(out.placement_group).bundle_nodes)
    assert set(missing) == set(placement_group_node_ids(group)) - served
    assert all("no download ran on it" in why for why in missing.values())
    for g in (group, out.placement_group):
        ray.util.remove_placement_group(g)


# ---------------------------------------------------------------------- rejected writes


@pytest.mark.parametrize(
    "how",
    ["in-place", "update", "returned"],
)
def test_a_rejected_skip_default_init_under_continue_keeps_the_defaults(
    fake_ray_cluster: FakeRayCluster, how: str
) -> None:
    def says_yes(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if phase != "pre_download":
            return None
        if how == "in-place":
            data["skip_default_init"] = "yes"
        elif how == "update":
            data.update(skip_default_init="yes")
        else:
            return {"skip_default_init": "yes"}
        return None

    out = run(LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[says_yes]), error_policy="continue")
    assert [type(e.error) for e in out.errors] == [CallbackReturnError]
    assert "skip_default_init" not in out.data
    node = next(iter(fake_ray_cluster.placement_group(out.placement_group).bundle_nodes))
    assert files_in_folder(fake_ray_cluster, node) == ALL_FILES, "the default download ran"
    ray.util.remove_placement_group(out.placement_group)


# ---------------------------------------------------------------------- never hang


def test_a_blocking_async_callback_cannot_hang_initialize_node(
    fake_ray_cluster: FakeRayCluster,
) -> None:
    release = threading.Event()

    async def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        if phase == "post_placement_group":
            release.wait(3600)  # a synchronous client inside async def

    started = time.monotonic()
    try:
        with pytest.raises(CallbackTimeoutError) as info:
            run(LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[blocks]), callback_timeout_s=0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 30
    assert info.value.cause == "blocked-loop"
    assert "use await asyncio.sleep / asyncio.to_thread" in str(info.value)
    assert fake_ray_cluster.live_placement_groups == [], "the default group was removed"
