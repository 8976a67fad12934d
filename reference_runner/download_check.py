"""Which nodes of a placement group lack the model files the worker download choice asks for.

The rule (docs/design.md §The callback contract): unless ``skip_default_init`` is set, when
``pre_engine_init`` ends every node of the final placement group holds what
``worker_node_download_model`` asks for. :func:`initialize_node` uses
:func:`nodes_missing_model` to decide where to download; a test (or the conformance kit)
checks the rule from a run's result with :func:`final_group_missing_model`, or with
:func:`nodes_missing_model` given the group's node ids (:func:`placement_group_node_ids`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .download import ModelDownloadResult, select_files
from .downloadable import NodeModelDownloadable
from .reserved import PLACEMENT_GROUP, SKIP_DEFAULT_INIT, WORKER_NODE_DOWNLOAD_MODEL

if TYPE_CHECKING:
    from .node_init import InitializeNodeOutput


def covers(held: NodeModelDownloadable, asked: NodeModelDownloadable) -> bool:
    """True when a node that downloaded ``held`` has every file ``asked`` selects."""
    return held.union(asked) is held


def nodes_missing_model(
    node_ids: Iterable[str],
    download_result: ModelDownloadResult | None,
    choice: NodeModelDownloadable | str = NodeModelDownloadable.MODEL_AND_TOKENIZER,
    *,
    on_disk: bool = False,
) -> dict[str, str]:
    """Return ``{node id: what it lacks}`` for each of ``node_ids`` without what ``choice``
    asks for; ``{}`` when every node holds it (or ``choice`` is ``NONE``).

    A node lacks the model when ``download_result`` has no download on it, when its download
    took a narrower choice, or when its download misses files ``choice`` selects from the
    model source (``download_result.source``, when readable here). ``on_disk=True`` also
    checks that those files exist under the download's folder: only meaningful where this
    process sees the nodes' disks (the fake cluster, a one-machine cluster).
    """
    asked = NodeModelDownloadable.coerce(choice)
    if not asked:
        return {}
    nodes = download_result.nodes if download_result is not None else {}
    source = Path(download_result.source) if download_result and download_result.source else None
    expected = select_files(source, asked) if source is not None and source.is_dir() else None
    missing: dict[str, str] = {}
    for node_id in sorted(set(node_ids)):
        download = nodes.get(node_id)
        if download is None:
            missing[node_id] = f"no download ran on it ({asked.name} asked)"
            continue
        if not covers(download.downloadable, asked):
            missing[node_id] = (
                f"it downloaded {download.downloadable.name}, which lacks files {asked.name} "
                "selects"
            )
            continue
        wanted = expected if expected is not None else list(download.files)
        absent = sorted(set(wanted) - set(download.files))
        if absent:
            missing[node_id] = f"its download lacks {absent}"
            continue
        if on_disk:
            gone = [rel for rel in wanted if not (Path(download.path) / rel).is_file()]
            if gone:
                missing[node_id] = f"files absent from {download.path}: {gone}"
    return missing


def placement_group_node_ids(group: Any) -> list[str]:
    """The distinct node ids a placed Ray placement group's bundles are on (needs Ray)."""
    import ray

    table = ray.util.placement_group_table(group)
    return sorted(set((table.get("bundles_to_node_id") or {}).values()))


def final_group_missing_model(
    output: InitializeNodeOutput, *, on_disk: bool = False
) -> dict[str, str]:
    """Check the rule on an ``initialize_node`` result: ``{node id: what it lacks}`` for the
    nodes of ``output.placement_group``; ``{}`` when the rule holds or
    ``skip_default_init`` was set. Needs the Ray the run used, to read the group's nodes.

    Reads the choice from ``output.data`` (as it was when initialization ended: a callback
    that changes ``worker_node_download_model`` in ``post_initialization`` shows here).
    """
    data = output.data
    if data.get(SKIP_DEFAULT_INIT, False) is True:
        return {}
    group = (
        output.placement_group if output.placement_group is not None else data.get(PLACEMENT_GROUP)
    )
    if group is None:
        return {"<no placement group>": "the run ended without a placement group"}
    choice = data.get(WORKER_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.MODEL_AND_TOKENIZER)
    return nodes_missing_model(
        placement_group_node_ids(group), output.download_result, choice, on_disk=on_disk
    )


__all__ = [
    "covers",
    "final_group_missing_model",
    "nodes_missing_model",
    "placement_group_node_ids",
]
