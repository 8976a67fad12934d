"""A Ray Serve LLM replica's start-up, run by Ray's own code on whatever Ray is connected.

This is the path a ``CallbackBase`` callback takes in a deployment (docs/design.md §Ray is
the judge), with nothing of ours in between but what Ray's code does not expose:

1. **The replica's placement group.** Serve creates it before the replica starts, from
   ``LLMServer.get_deployment_options``: Ray's ``engine_config.placement_bundles`` and
   ``placement_strategy``, with the replica actor's own resources (``ray_actor_options``:
   one CPU by default) added to the first bundle. ``LLMServer`` cannot be imported without
   vLLM, so :func:`replica_placement` does that addition (the bundles and strategy are
   Ray's).
2. **The replica.** A Ray task in bundle 0 of that group (so Ray's
   ``get_current_placement_group()`` returns it, as in a replica actor), with the
   deployment's ``runtime_env``.
3. **The engine start.** In the replica, :func:`engine_start` runs the beginning of Ray's
   ``VLLMEngine.start`` line for line: ``callback = llm_config.get_or_create_callback()``
   (Ray builds the class with its keyword call); ``await
   callback.run_callback("on_before_node_init")``; ``if callback.ctx.run_init_node: await
   initialize_node(llm_config)`` (Ray's own: one Ray task per node of the group, each
   running ``initialize_remote_node`` -> ``download_model_files``, which calls
   ``run_callback_sync("on_before_download_model_files_distributed")`` on the copy the task
   received); ``await callback.run_callback("on_after_node_init")``. The engine itself is
   not started (that needs vLLM and GPUs); what it would read is returned: ``ctx`` and the
   model path Ray left in ``engine_config.hf_model_id``.

:data:`ENGINE_START_STEPS` names the steps; a :class:`StepObserver` passed in watches each
(the conformance kit records process state and ``ctx`` around them). Ray's errors are
Ray's: a hook error wrapped by ``run_callback``, a download hook's error as the
``RayTaskError`` its task raised.

Importing this module imports no Ray; the functions do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .cloud_errors import cloud_error_note
from .ray_callback_ctx import CTX_FIELDS
from .ray_llm import torch_stand_in

#: The step that builds the callback: Ray's ``LLMConfig.get_or_create_callback()``.
CONSTRUCT: Final = "get_or_create_callback"
ON_BEFORE_NODE_INIT: Final = "on_before_node_init"
#: Ray's ``initialize_node``: the download tasks, each calling the download hook.
INITIALIZE_NODE: Final = "initialize_node"
DOWNLOAD_HOOK: Final = "on_before_download_model_files_distributed"
ON_AFTER_NODE_INIT: Final = "on_after_node_init"
#: The steps of :func:`engine_start`, in order (``initialize_node`` only when
#: ``ctx.run_init_node``).
ENGINE_START_STEPS: Final = (CONSTRUCT, ON_BEFORE_NODE_INIT, INITIALIZE_NODE, ON_AFTER_NODE_INIT)
#: The hooks Ray calls, in the order it calls them.
HOOKS: Final = (ON_BEFORE_NODE_INIT, DOWNLOAD_HOOK, ON_AFTER_NODE_INIT)


class StepObserver(Protocol):
    """Watches each step of :func:`engine_start`: ``step`` must run ``action()`` (once) and
    return or raise what it does; ``callback`` is the instance (``None`` before it exists)."""

    async def step(self, name: str, action: Callable[[], Awaitable[Any]], callback: Any) -> Any: ...


class _Plain:
    async def step(self, name: str, action: Callable[[], Awaitable[Any]], callback: Any) -> Any:
        return await action()


async def engine_start(llm_config: Any, observer: StepObserver | None = None) -> Any:
    """The callback part of Ray's ``VLLMEngine.start``, by Ray's own functions (see the
    module docstring); returns the callback instance."""
    from ray.llm._internal.serve.utils.node_initialization_utils import initialize_node

    watch = observer or _Plain()

    async def construct() -> Any:
        return llm_config.get_or_create_callback()

    callback = await watch.step(CONSTRUCT, construct, None)
    await watch.step(
        ON_BEFORE_NODE_INIT, lambda: callback.run_callback(ON_BEFORE_NODE_INIT), callback
    )
    if callback.ctx.run_init_node:
        await watch.step(INITIALIZE_NODE, lambda: initialize_node(llm_config), callback)
    await watch.step(
        ON_AFTER_NODE_INIT, lambda: callback.run_callback(ON_AFTER_NODE_INIT), callback
    )
    return callback


def describe_ctx(ctx: Any) -> dict[str, Any]:
    """``ctx`` as plain values to compare and report: the download choice by name, the
    group by id, copies of the dicts (a field ``ctx`` lacks is ``"<missing>"``)."""
    out: dict[str, Any] = {}
    for name in CTX_FIELDS:
        value = getattr(ctx, name, "<missing>")
        if name == "worker_node_download_model" and hasattr(value, "name"):
            value = f"NodeModelDownloadable.{value.name}"
        elif name == "placement_group" and hasattr(value, "id"):
            try:
                value = f"PlacementGroup({value.id.hex()})"
            except Exception:
                value = repr(value)
        elif isinstance(value, dict | list):
            try:
                value = copy.deepcopy(value)
            except Exception:
                value = copy.copy(value)
        out[name] = value
    return out


@dataclass
class ReplicaStart:
    """What one replica start did (picklable: it comes back from the replica's task).

    ``error`` is what the start raised (``None``: it completed); ``ctx`` the callback's
    ``ctx`` at the end, as :func:`describe_ctx` gives it (``None``: never built);
    ``model_path`` what Ray left in ``engine_config.hf_model_id`` for the engine;
    ``steps`` the steps that ran; ``observer`` the observer, back from the replica with
    what it recorded; ``node_id`` where the replica ran; ``bundles``/``strategy`` its group.
    """

    error: BaseException | None
    ctx: dict[str, Any] | None = None
    model_path: str | None = None
    steps: tuple[str, ...] = ()
    observer: Any = None
    node_id: str | None = None
    bundles: tuple[Mapping[str, float], ...] = ()
    strategy: str | None = None
    duration_s: float = 0.0
    #: ``accelerator_type:<TYPE>`` hints left out of the group: the cluster has no such node.
    dropped_hints: tuple[str, ...] = ()
    #: ``{node id: files under model_path there}`` for each node of the group the engine
    #: would use (read by a task pinned to the node, before the group is removed); ``None``:
    #: not read.
    node_files: dict[str, list[str]] | None = None
    #: The id (hex) of the group in ``ctx.placement_group`` when the start ended (``None``:
    #: none); set by the replica.
    ctx_group: str | None = None
    #: The id of the group a hook supplied in ``ctx.placement_group`` in place of the
    #: replica's (the engine's, removed with the replica as Serve would); ``None``: none.
    engine_group: str | None = None


class _Steps:
    """Records which steps ran, around the caller's observer."""

    def __init__(self, inner: StepObserver | None) -> None:
        self.inner = inner or _Plain()
        self.names: list[str] = []

    async def step(self, name: str, action: Callable[[], Awaitable[Any]], callback: Any) -> Any:
        self.names.append(name)
        return await self.inner.step(name, action, callback)


def replica_main(llm_config: Any, observer: StepObserver | None, torch_home: str) -> ReplicaStart:
    """The body of the replica (a Ray task in bundle 0 of its group): :func:`engine_start`
    on a fresh event loop, with the torch stand-in where torch is missing."""
    import ray

    started = time.perf_counter()
    steps = _Steps(observer)
    callback: Any = None
    error: BaseException | None = None
    try:
        with torch_stand_in(torch_home):
            callback = asyncio.run(engine_start(llm_config, steps))
    except BaseException as exc:  # the hook's (SystemExit, say): a task thread never gets Ctrl-C
        error = exc
        callback = getattr(llm_config, "_callback_instance", None)
    model_path = None
    with contextlib.suppress(Exception):
        model_path = llm_config.get_engine_config().hf_model_id
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:
        node_id = None
    group = getattr(getattr(callback, "ctx", None), "placement_group", None)
    try:
        ctx_group = group.id.hex() if group is not None else None
    except Exception:  # not a placement group: callbackbase.ctx-types says so
        ctx_group = None
    return ReplicaStart(
        error=None if error is None else picklable_error(error),
        ctx=None if callback is None else describe_ctx(callback.ctx),
        ctx_group=ctx_group,
        model_path=model_path,
        steps=tuple(steps.names),
        observer=observer,
        node_id=node_id,
        duration_s=time.perf_counter() - started,
    )


#: The attribute :func:`annotate_chain` stores an exception's chain under (it survives
#: pickling, which drops ``__cause__``, ``__context__`` and the traceback).
CHAIN_ATTRIBUTE: Final = "raycallbacks_chain"


def annotate_chain(error: BaseException) -> BaseException:
    """Store on ``error`` (in its ``__dict__``, which pickling keeps) a description of every
    exception in its chain: ``{"type", "module", "message", "missing_module", "where"}``
    (``missing_module``: a ``ModuleNotFoundError``'s ``name``; ``where``: the last frame's
    ``file:line (function)``). Idempotent; returns ``error``."""
    import traceback

    if CHAIN_ATTRIBUTE in getattr(error, "__dict__", {}):
        return error
    links: list[dict[str, Any]] = []
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        exc = todo.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
        user = [
            f for f in frames if "importlib" not in f.filename and not f.filename.startswith("<")
        ]
        last = user[-1] if user else None
        links.append(
            {
                "type": type(exc).__qualname__,
                "module": type(exc).__module__,
                "message": str(exc),
                "missing_module": exc.name if isinstance(exc, ModuleNotFoundError) else None,
                "where": f"{last.filename}:{last.lineno} ({last.name})" if last else None,
                "note": cloud_error_note(exc),
            }
        )
        for nxt in (exc.__cause__, exc.__context__, getattr(exc, "cause", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    with contextlib.suppress(Exception):
        setattr(error, CHAIN_ATTRIBUTE, links)
    return error


class UnpicklableError(Exception):
    """Stands for an exception that Ray's serializer cannot carry back from the replica:
    its type, message and why it does not pickle."""


def picklable_error(error: BaseException) -> BaseException:
    """``error`` if ``ray.cloudpickle`` can round-trip it, else an
    :class:`UnpicklableError` describing it (with its chain's messages)."""
    from ray import cloudpickle as _cloudpickle

    pickler: Any = _cloudpickle
    annotate_chain(error)
    try:
        pickler.loads(pickler.dumps(error))
        return error
    except Exception as exc:
        text = f"{type(error).__name__}: {error}"
        cause = error.__cause__
        if cause is not None:
            text += f" (caused by {type(cause).__name__}: {cause})"
        stand_in = UnpicklableError(f"{text} [not picklable: {type(exc).__name__}: {exc}]")
        chain = getattr(error, CHAIN_ATTRIBUTE, None)
        if chain is not None:
            setattr(stand_in, CHAIN_ATTRIBUTE, chain)
        return stand_in


def replica_actor_resources(llm_config: Any) -> dict[str, float]:
    """The replica actor's own resources, as ``LLMServer.get_deployment_options`` reads
    them from ``deployment_config.ray_actor_options`` (one CPU by default)."""
    options = dict((llm_config.deployment_config or {}).get("ray_actor_options") or {})
    resources: dict[str, float] = {
        "CPU": options.get("num_cpus", 1),
        "GPU": options.get("num_gpus", 0),
        **(options.get("resources") or {}),
    }
    if "memory" in options:
        resources["memory"] = options["memory"]
    return resources


def replica_placement(llm_config: Any) -> tuple[list[dict[str, float]], str]:
    """The replica's placement group as Serve creates it (see the module docstring): Ray's
    engine bundles with the replica actor's resources added to the first, and Ray's
    strategy."""
    engine_config = llm_config.get_engine_config()
    child = [dict(bundle) for bundle in engine_config.placement_bundles]
    replica = replica_actor_resources(llm_config)
    if not child:
        bundles = [dict(replica)]
    else:
        first = child[0]
        merged = {key: first.get(key, 0) + replica.get(key, 0) for key in set(first) | set(replica)}
        bundles = [{k: v for k, v in merged.items() if v != 0} or merged, *child[1:]]
    return bundles, str(engine_config.placement_strategy)


#: The resource Ray adds to every bundle of a deployment with ``accelerator_type`` (0.001 of
#: ``accelerator_type:<TYPE>``): a scheduling hint that pins the group to such nodes.
ACCELERATOR_HINT_PREFIX: Final = "accelerator_type:"


def without_missing_accelerator_hints(
    bundles: list[dict[str, float]], cluster_resources: Mapping[str, float]
) -> tuple[list[dict[str, float]], tuple[str, ...]]:
    """``bundles`` without the ``accelerator_type:<TYPE>`` hints the cluster has no node
    for, and the hints dropped. The certifying cluster's GPUs are of one type (logical ones
    have none); the deployment's type stays in ``llm_config.accelerator_type``, which the
    hooks read, and only the group's placement ignores it."""
    dropped: list[str] = []
    out = []
    for bundle in bundles:
        kept = {}
        for key, value in bundle.items():
            if key.startswith(ACCELERATOR_HINT_PREFIX) and key not in cluster_resources:
                if key not in dropped:
                    dropped.append(key)
                continue
            kept[key] = value
        out.append(kept)
    return out, tuple(dropped)


class ReplicaStartError(RuntimeError):
    """The replica's start ended without a result, and not by its bound (the connection or
    the task was lost)."""


class ReplicaStartTimeoutError(TimeoutError):
    """The replica's start did not finish within the bound."""


class ReplicaPlacementError(RuntimeError):
    """The cluster could not place the replica's placement group in time: the cluster is
    too small for the deployment (the callback never ran)."""

    def __init__(self, message: str, bundles: list[dict[str, float]], strategy: str) -> None:
        super().__init__(message)
        self.bundles = bundles
        self.strategy = strategy


def run_replica(
    llm_config: Any,
    *,
    observer: StepObserver | None = None,
    timeout_s: float,
    placement_timeout_s: float,
    torch_home: str,
    runtime_env: Mapping[str, Any] | None = None,
    inspect_nodes: bool = False,
) -> ReplicaStart:
    """Start one replica of ``llm_config`` on the connected cluster (fake or real), by
    Ray's code (see the module docstring), and remove its group afterwards.

    The group must be placed within ``placement_timeout_s``, the start must end within
    ``timeout_s`` (else :class:`ReplicaStartTimeoutError`; the replica's task is cancelled).
    ``runtime_env`` is the replica's (default: the config's, as Serve gives it).
    ``inspect_nodes`` also lists, on each node of the group, the files under the model path
    Ray left for the engine (:attr:`ReplicaStart.node_files`). A group a hook put in
    ``ctx.placement_group`` is the engine's: it is removed too (:attr:`ReplicaStart.engine_group`).
    """
    import ray as _ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray: Any = _ray
    bundles, strategy = replica_placement(llm_config)
    bundles, dropped = without_missing_accelerator_hints(bundles, ray.cluster_resources())
    group = ray.util.placement_group(bundles, strategy=strategy)
    try:
        ready, _ = ray.wait([group.ready()], timeout=placement_timeout_s)
        if not ready:
            raise ReplicaPlacementError(
                f"the replica's placement group {bundles} ({strategy}) was not placed within "
                f"{placement_timeout_s:g} s: the cluster cannot hold it",
                bundles,
                strategy,
            )
        replica = replica_actor_resources(llm_config)
        env = dict(runtime_env if runtime_env is not None else (llm_config.runtime_env or {}))
        options: dict[str, Any] = {
            "num_cpus": replica.get("CPU", 1),
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
            ),
            "max_retries": 0,
        }
        if replica.get("GPU"):
            options["num_gpus"] = replica["GPU"]
        if env:
            options["runtime_env"] = env
        ref = ray.remote(replica_main).options(**options).remote(llm_config, observer, torch_home)
        started = time.monotonic()
        done, _ = ray.wait([ref], timeout=timeout_s)
        if not done:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if not done and not ray.is_initialized():
            raise ReplicaStartError(
                "the replica's result never arrived: the driver's Ray connection was gone "
                "while it started (a hook that called ray.shutdown()?)"
            )
        if not done and time.monotonic() - started < timeout_s:
            raise ReplicaStartError(
                "the replica's result never arrived, before its bound: its task was lost "
                "(did the driver's Ray connection change meanwhile? see process.ray-connection)"
            )
        if not done:
            raise ReplicaStartTimeoutError(
                f"the replica's start (Ray's engine start: the callback's constructor and "
                f"hooks, Ray's initialize_node) did not finish within {timeout_s:g} s"
            )
        result: ReplicaStart = ray.get(ref)
        result.bundles = tuple(bundles)
        result.strategy = strategy
        result.dropped_hints = dropped
        engine_group = _engine_group(result, group)
        if engine_group is not None:
            result.engine_group = engine_group.id.hex()
        if inspect_nodes and result.model_path:
            result.node_files = files_on_nodes(
                engine_group or group, result.model_path, timeout_s=timeout_s
            )
        if engine_group is not None:  # the engine's group: handed back with the replica
            with contextlib.suppress(Exception):
                ray.util.remove_placement_group(engine_group)
        return result
    finally:
        with contextlib.suppress(Exception):
            ray.util.remove_placement_group(group)


def _engine_group(result: ReplicaStart, replica_group: Any) -> Any:
    """The group a hook put in ``ctx.placement_group`` in place of the replica's (the one
    Ray's initialize_node and the engine then use), as a handle; ``None`` when it is the
    replica's own."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    if result.ctx_group is None or result.ctx_group == replica_group.id.hex():
        return None
    return PlacementGroup(PlacementGroupID(bytes.fromhex(result.ctx_group)))


def _list_files(path: str) -> list[str]:
    root = os.path.expanduser(path)
    if not os.path.isdir(root):
        return []
    found: list[str] = []
    for folder, _, files in os.walk(root):
        found.extend(os.path.relpath(os.path.join(folder, f), root) for f in files)
    return sorted(found)


def files_on_nodes(group: Any, path: str, *, timeout_s: float) -> dict[str, list[str]]:
    """``{node id: files under path}`` for each node ``group``'s bundles are on, read by a
    zero-CPU task pinned to each node."""
    import ray as _ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray: Any = _ray
    table = ray.util.placement_group_table(group)
    nodes = sorted({str(n) for n in table.get("bundles_to_node_id", {}).values() if n})
    refs = {
        node: ray.remote(_list_files)
        .options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
            max_retries=0,
        )
        .remote(path)
        for node in nodes
    }
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    done = set(ready)
    return {node: list(ray.get(ref)) if ref in done else [] for node, ref in refs.items()}


def run_ray_node_initialization(
    llm_config: Any,
    *,
    timeout_s: float = 60.0,
    placement_timeout_s: float = 30.0,
    torch_home: str | None = None,
) -> ReplicaStart:
    """Ray's node initialization for ``llm_config`` (Ray's ``LLMConfig``, or a mapping of its
    fields with a ``callback_config``) on the connected cluster, by Ray's own code: one
    replica start (see the module docstring), the files each node of the group then holds
    under the model path included; torch's cache stand-in goes to ``torch_home`` (default: a
    temporary folder, removed afterwards). The one call the fixtures expose
    (``fake_ray_cluster.run_ray_node_initialization``,
    ``gpu_ray_cluster.run_ray_node_initialization``)."""
    import tempfile

    from .ray_llm import build_ray_llm_config

    if isinstance(llm_config, Mapping):
        llm_config = build_ray_llm_config(llm_config)
    with tempfile.TemporaryDirectory(prefix="raycallbacks-torch-") as scratch:
        return run_replica(
            llm_config,
            timeout_s=timeout_s,
            placement_timeout_s=placement_timeout_s,
            torch_home=torch_home or scratch,
            inspect_nodes=True,
        )
