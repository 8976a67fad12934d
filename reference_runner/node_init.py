"""``initialize_node``: the seed's node initialization, with callbacks at every phase.

Sequence (docs/design.md §The callback contract):

1. load the config's callbacks; ``pre_initialization``;
2. the system fills ``local_node_download_model`` (default TOKENIZER_ONLY) and
   ``worker_node_download_model`` (default MODEL_AND_TOKENIZER) where no callback set them,
   so ``pre_download`` callbacks see and may still change the choice; ``pre_download``;
   ``skip_default_init`` is read here, once;
3. the local node downloads what ``local_node_download_model`` asks (a Ray task pinned to
   this node); ``data["download_result"]``; ``post_download``;
4. the placement group: one a callback put in ``data["placement_group"]`` wins, else the
   default one from the config; the system *serves* it (below); ``post_placement_group``;
5. the system serves ``data["placement_group"]`` again; ``pre_engine_init``;
6. the system serves ``data["placement_group"]`` again (it must be there now);
   ``post_initialization``; the output is built from ``data``.

Serving a group: wait (bounded by ``placement_group_timeout_s``) for it to be placed, unless
this run already waited for that very group; then, unless ``skip_default_init``, download
what ``worker_node_download_model`` asks *now* onto each node of the group that does not
already hold it (:func:`reference_runner.download_check.nodes_missing_model`: no download
there yet, or a narrower one), one pinned task per node, awaited together (bounded by
``download_timeout_s``), and add them to ``data["download_result"]``.

Why this order. Worker nodes are known only once a group is placed, so each round of worker
downloads follows the wait for the group it serves. The first round runs before
``post_placement_group`` (the source design's order: the downloads come before the phases
that use them), so that phase's callbacks see a ``download_result`` covering the group in
``data``. A callback may still replace the group, or widen ``worker_node_download_model``,
in ``post_placement_group`` or ``pre_engine_init``, and the engine starts on the group that
is in ``data`` when ``pre_engine_init`` ends; so the system serves again after each of those
two phases: after ``post_placement_group`` so that ``pre_engine_init`` callbacks also see
the group in ``data`` placed and its nodes holding the model, and after ``pre_engine_init``
for the group the engine gets. Only the nodes that lack the files are downloaded onto, so a
replacement costs its new nodes only and an unchanged group costs nothing. Hence the
invariant: unless ``skip_default_init`` is set, when ``pre_engine_init`` ends every node of
the final placement group holds what ``worker_node_download_model`` asks for
(:func:`reference_runner.download_check.final_group_missing_model` checks it on a result).
A group put in ``data`` in ``post_initialization`` is returned as it is (neither waited for
nor served): that phase comes after the engine's group is settled.

``skip_default_init=True`` skips the default downloads and placement group; the callbacks
must then supply ``placement_group`` by ``pre_engine_init``. Every placement group handed
over in ``data`` belongs to the system: it is removed if initialization fails, and groups
replaced by a later one are removed when initialization ends (not when replaced: a
callback may still use the group it replaced until then).

Ray is reached only through its public API (``ray.util.placement_group``, ``ray.get``,
``ray.remote(...).options(...)``), so the same code runs on a live cluster and on the
in-memory fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import LLMConfig
from .download import ModelDownloadResult, NodeDownload, download_model, resolve_model_source
from .download_check import nodes_missing_model
from .downloadable import NodeModelDownloadable
from .errors import InitializationError, RayNotConnectedError
from .loading import load_callback
from .phases import (
    POST_DOWNLOAD,
    POST_INITIALIZATION,
    POST_PLACEMENT_GROUP,
    PRE_DOWNLOAD,
    PRE_ENGINE_INIT,
    PRE_INITIALIZATION,
)
from .placement_wait import wait_placed
from .reserved import (
    DOWNLOAD_RESULT,
    EXTRA_INIT_KWARGS,
    LOCAL_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RUNTIME_ENV,
    SKIP_DEFAULT_INIT,
    WORKER_NODE_DOWNLOAD_MODEL,
)
from .runner import CallbackRunner, ErrorPolicy
from .trace import CallbackFailure, TraceEntry

logger = logging.getLogger("reference_runner")

DEFAULT_PLACEMENT_GROUP_TIMEOUT_S = 60.0
DEFAULT_DOWNLOAD_TIMEOUT_S = 300.0
DEFAULT_CALLBACK_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class InitializeNodeOutput:
    """What the engine is started with, built from ``data`` after the last phase.

    ``placement_group``, ``runtime_env`` (``data``'s, else the config's) and
    ``extra_init_kwargs`` are the seed's output; ``download_result``, the final ``data``,
    the runner's ``trace`` and collected ``errors`` are there for inspection.
    """

    placement_group: Any
    runtime_env: dict[str, Any] | None
    extra_init_kwargs: dict[str, Any]
    download_result: ModelDownloadResult | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    trace: list[TraceEntry] = field(default_factory=list)
    errors: list[CallbackFailure] = field(default_factory=list)


async def initialize_node(
    llm_config: LLMConfig,
    *,
    placement_group_timeout_s: float = DEFAULT_PLACEMENT_GROUP_TIMEOUT_S,
    download_timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
    callback_timeout_s: float | None = DEFAULT_CALLBACK_TIMEOUT_S,
    error_policy: ErrorPolicy = "raise",
) -> InitializeNodeOutput:
    """Initialize this node for ``llm_config``, running its callbacks at every phase.

    Needs a connected Ray (``ray.init()``, or a cluster fixture). Every wait is bounded:
    each callback call by ``callback_timeout_s``, each placement group by
    ``placement_group_timeout_s`` and each round of downloads by ``download_timeout_s``.
    """
    ray = _connected_ray()
    callbacks = [load_callback(spec) for spec in llm_config.callbacks]
    runner = CallbackRunner(
        callbacks, error_policy=error_policy, timeout_s=callback_timeout_s, trace=True
    )
    try:
        return await _initialize(
            ray, llm_config, runner, placement_group_timeout_s, download_timeout_s
        )
    finally:
        runner.close()


async def _initialize(
    ray: Any,
    llm_config: LLMConfig,
    runner: CallbackRunner,
    placement_group_timeout_s: float,
    download_timeout_s: float,
) -> InitializeNodeOutput:
    data = runner.data
    groups = _OwnedGroups(ray)
    waited: list[Any] = []

    async def phase(name: str) -> None:
        await runner.run(name, llm_config)
        groups.adopt(data.get(PLACEMENT_GROUP))

    async def serve(group: Any, result: ModelDownloadResult) -> ModelDownloadResult:
        """Wait for ``group`` (once) and download onto its nodes that lack the model."""
        if group is None:
            return result
        if not any(group is seen for seen in waited):
            await _wait_ready(ray, group, placement_group_timeout_s)
            waited.append(group)
        if skip_default:
            return result
        choice = NodeModelDownloadable.coerce(
            data.get(WORKER_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.MODEL_AND_TOKENIZER)
        )
        missing = nodes_missing_model(_nodes_of(ray, group), result, choice)
        if missing:
            nodes = {node: choice for node in missing}
            result = result.with_nodes(
                await _download_on_nodes(ray, llm_config, nodes, download_timeout_s)
            )
            data[DOWNLOAD_RESULT] = result
        return result

    try:
        await phase(PRE_INITIALIZATION)
        data.setdefault(LOCAL_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.TOKENIZER_ONLY)
        data.setdefault(WORKER_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.MODEL_AND_TOKENIZER)
        if llm_config.runtime_env is not None:
            data.setdefault(RUNTIME_ENV, dict(llm_config.runtime_env))
        await phase(PRE_DOWNLOAD)

        skip_default = bool(data.get(SKIP_DEFAULT_INIT, False))
        local_node_id = ray.get_runtime_context().get_node_id()
        source = str(resolve_model_source(llm_config.model_id)) if not skip_default else ""
        result = ModelDownloadResult(llm_config.model_id, source, local_node_id, {})
        if not skip_default:
            local_choice = NodeModelDownloadable.coerce(data[LOCAL_NODE_DOWNLOAD_MODEL])
            if local_choice:
                result = result.with_nodes(
                    await _download_on_nodes(
                        ray, llm_config, {local_node_id: local_choice}, download_timeout_s
                    )
                )
        data[DOWNLOAD_RESULT] = result
        await phase(POST_DOWNLOAD)

        group = data.get(PLACEMENT_GROUP)
        if group is None and not skip_default:
            group = _create_default_group(ray, llm_config)
            groups.adopt(group)
            data[PLACEMENT_GROUP] = group
        result = await serve(group, result)
        await phase(POST_PLACEMENT_GROUP)
        result = await serve(data.get(PLACEMENT_GROUP), result)
        await phase(PRE_ENGINE_INIT)

        final = data.get(PLACEMENT_GROUP)
        if final is None:
            raise InitializationError(
                "no placement group after phase 'pre_engine_init': "
                + (
                    "skip_default_init=True was set, so a callback must put its own placement "
                    "group in data['placement_group'] by 'pre_engine_init' (e.g. return "
                    "{'placement_group': ray.util.placement_group([{'GPU': 1}])})"
                    if skip_default
                    else "a callback removed data['placement_group']; leave it in place or "
                    "replace it with another placement group"
                )
            )
        await serve(final, result)
        await phase(POST_INITIALIZATION)
        final = data.get(PLACEMENT_GROUP)
        if final is None:
            raise InitializationError(
                "a callback removed data['placement_group'] in phase 'post_initialization'; "
                "the engine needs it: leave it in place"
            )
    except BaseException:
        groups.release_all()
        raise
    groups.release_all(keep=final)
    extra = data.get(EXTRA_INIT_KWARGS)
    return InitializeNodeOutput(
        placement_group=final,
        runtime_env=data.get(RUNTIME_ENV, llm_config.runtime_env),
        extra_init_kwargs=dict(extra) if extra else {},
        download_result=data.get(DOWNLOAD_RESULT),
        data=dict(data),
        trace=runner.trace,
        errors=list(runner.errors),
    )


def _connected_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a declared dependency
        raise RayNotConnectedError(
            "initialize_node needs Ray: pip install 'pytest-raycallbacks[ray]'"
        ) from exc
    if not ray.is_initialized():
        raise RayNotConnectedError(
            "initialize_node needs a connected Ray cluster: call ray.init(...) first (in "
            "tests, use the fake_ray_cluster or gpu_ray_cluster fixture)"
        )
    return ray


class _OwnedGroups:
    """Placement groups handed to the system through ``data`` (or created by it)."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._groups: list[Any] = []

    def adopt(self, group: Any) -> None:
        if group is not None and not any(group is g for g in self._groups):
            self._groups.append(group)

    def release_all(self, keep: Any = None) -> None:
        for group in self._groups:
            if group is keep:
                continue
            try:
                self._ray.util.remove_placement_group(group)
            except Exception as exc:  # removing is best effort; never mask the real error
                logger.warning("could not remove placement group %r: %s", group, exc)
        self._groups = [keep] if keep is not None else []


def _create_default_group(ray: Any, config: LLMConfig) -> Any:
    bundles = config.placement_bundles()
    strategy = config.placement_strategy()
    name = f"raycallbacks-{uuid.uuid4().hex[:12]}"
    return ray.util.placement_group(bundles, strategy=strategy, name=name)


async def _wait_ready(ray: Any, group: Any, timeout_s: float) -> None:
    """Wait for ``group`` (bounded); one that can never be placed on a cluster that cannot
    grow fails at once (:func:`reference_runner.placement_wait.wait_placed`)."""
    await wait_placed(ray, group, timeout_s)


def _nodes_of(ray: Any, group: Any) -> list[str]:
    table = ray.util.placement_group_table(group)
    placed = table.get("bundles_to_node_id") or {}
    return sorted(set(placed.values()))


async def _download_on_nodes(
    ray: Any,
    config: LLMConfig,
    choices: Mapping[str, NodeModelDownloadable],
    timeout_s: float,
) -> dict[str, NodeDownload]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(_download_on_this_node)
    refs = [
        task.options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
            name=f"raycallbacks-download-{choice.name.lower()}",
        ).remote(config.model_id, choice.name, config.model_cache_dir)
        for node, choice in choices.items()
    ]
    try:
        results: list[NodeDownload] = await asyncio.to_thread(ray.get, refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as exc:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise TimeoutError(
            f"model download of {config.model_id!r} on nodes {sorted(choices)} did not "
            f"finish within {timeout_s:g} s"
        ) from exc
    return {r.node_id: r for r in results}


def _download_on_this_node(model_id: str, choice: str, cache_dir: str | None) -> NodeDownload:
    """Ray task body: download onto the node this task runs on."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return download_model(model_id, choice, node_id=node_id, cache_dir=cache_dir)
