"""The fake implementations of Ray's public API, one function per Ray function.

Each ``fake_*`` function takes the active :class:`~.engine.Engine` first and then exactly
the arguments of the Ray function it stands for (:mod:`.patching` routes the call). They
keep Ray 2.60's checks: argument validation runs Ray's own pure-Python validators
(``validate_placement_group``, ``ray_option_utils``, ``resources_from_ray_options``,
``_configure_placement_group_based_on_context``), and error types and messages are
Ray's. Only what would reach Ray's core worker or GCS is served by the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import ray
from ray._common import ray_option_utils
from ray._common.ray_option_utils import _warn_if_using_deprecated_placement_group
from ray._common.utils import resources_from_ray_options
from ray._raylet import (  # type: ignore[attr-defined]
    PlacementGroupID,
    PythonFunctionDescriptor,
)
from ray.util.placement_group import (
    NODE_ID_LABEL_KEY,
    PlacementGroup,
    _configure_placement_group_based_on_context,
    _derive_node_level_strategy,
    validate_placement_group,
)
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from .actors import FakeActorHandle, handle_of
from .context import FakeRuntimeContext, current
from .engine import Engine
from .errors import FakeRayUnsupported
from .faults import function_path
from .model import Group
from .refs import FakeObjectRef
from .resources import gpu_ids

_TOPOLOGY_INIT_ARGS = (
    "num_cpus",
    "num_gpus",
    "resources",
    "labels",
    "object_store_memory",
    "_memory",
    "_system_config",
    "_node_ip_address",
)


class FakeRayContext(dict[str, Any]):
    """What ``ray.init`` returns on the fake: its ``address_info``-like mapping."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(
            address=engine.address,
            node_id=engine.head.node_id,
            node_ip_address=engine.head.ip,
            namespace=engine.namespace,
            dashboard_url=None,
        )
        self._engine = engine

    @property
    def address_info(self) -> dict[str, Any]:
        return dict(self)

    @property
    def dashboard_url(self) -> None:
        return None

    def disconnect(self) -> None:
        fake_shutdown(self._engine)

    def __enter__(self) -> FakeRayContext:
        return self

    def __exit__(self, *exc: object) -> None:
        fake_shutdown(self._engine)


# ---------------------------------------------------------------------- ray.*


def fake_init(engine: Engine, address: str | None = None, **kwargs: Any) -> FakeRayContext:
    """``ray.init``: connects the driver to the fake cluster (any ``address``)."""
    given = [k for k in _TOPOLOGY_INIT_ARGS if kwargs.get(k) is not None]
    if given:
        raise FakeRayUnsupported(
            f"ray.init({', '.join(f'{k}=...' for k in given)})",
            "the fake cluster's nodes come from the fixture: use "
            "@pytest.mark.fake_ray_cluster(...) or cluster.add_node() to shape them",
        )
    if engine.connected:
        if kwargs.get("ignore_reinit_error"):
            return FakeRayContext(engine)
        raise RuntimeError(
            "Maybe you called ray.init twice by accident? This error can be suppressed by "
            "passing in 'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to "
            "'ray.init()'."
        )
    engine.connected = True
    return FakeRayContext(engine)


def fake_shutdown(engine: Engine, _exiting_interpreter: bool = False) -> None:
    """``ray.shutdown``: disconnects the driver; its non-detached groups and actors go
    with it, as Ray fate-shares them with the job's driver."""
    if not engine.connected:
        return
    engine.connected = False
    with engine.lock:
        for group in list(engine.groups.values()):
            if group.state != "REMOVED" and group.lifetime != "detached":
                engine.remove_group(group)
        for actor in list(engine.actors.values()):
            lifetime = actor.creation.options.get("lifetime") if actor.creation else None
            if actor.state != "DEAD" and lifetime != "detached":
                engine.kill_actor(actor)


def fake_is_initialized(engine: Engine) -> bool:
    return engine.connected


def fake_get(
    engine: Engine,
    object_refs: Any,
    *,
    timeout: float | None = None,
    _use_object_store: bool = False,
) -> Any:
    engine.auto_init()
    if isinstance(object_refs, ray.ObjectRefGenerator):
        return object_refs
    individual = isinstance(object_refs, ray.ObjectRef)
    refs = [object_refs] if individual else object_refs
    if not isinstance(refs, list):
        raise ValueError(
            f"Invalid type of object refs, {type(object_refs)}, is given. 'object_refs' must "
            "either be an ObjectRef or a list of ObjectRefs. "
        )
    for ref in refs:
        if not isinstance(ref, ray.ObjectRef):
            raise TypeError(
                f"Attempting to call `get` on the value {ref}, which is not an ray.ObjectRef."
            )
    values = engine.get(refs, timeout)
    return values[0] if individual else values


def fake_put(
    engine: Engine, value: Any, *, _owner: Any = None, _tensor_transport: str | None = None
) -> FakeObjectRef:
    engine.auto_init()
    if _owner is not None:
        raise ValueError(
            "The experimental `_owner` argument to `ray.put` has been removed in Ray 2.56."
        )
    return engine.put(value)


def fake_wait(
    engine: Engine,
    ray_waitables: Any,
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    engine.auto_init()
    if isinstance(ray_waitables, ray.ObjectRef | ray.ObjectRefGenerator):
        raise TypeError(
            "wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, got a single "
            f"ray.ObjectRef or ray.ObjectRefGenerator {ray_waitables}"
        )
    if not isinstance(ray_waitables, list):
        raise TypeError(
            "wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, "
            f"got {type(ray_waitables)}"
        )
    if timeout is not None and timeout < 0:
        raise ValueError(f"The 'timeout' argument must be nonnegative. Received {timeout}")
    for waitable in ray_waitables:
        if not isinstance(waitable, ray.ObjectRef | ray.ObjectRefGenerator):
            raise TypeError(
                "wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, "
                f"got list containing {type(waitable)}"
            )
    if not ray_waitables:
        return [], []
    if len(ray_waitables) != len(set(ray_waitables)):
        raise ValueError("Wait requires a list of unique ray_waitables.")
    if num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if num_returns > len(ray_waitables):
        raise ValueError(
            "num_returns cannot be greater than the number of ray_waitables provided to ray.wait."
        )
    return engine.wait(ray_waitables, num_returns, timeout)


def fake_cancel(
    engine: Engine, ray_waitable: Any, *, force: bool = False, recursive: bool = True
) -> None:
    if isinstance(ray_waitable, ray.ObjectRefGenerator):
        raise FakeRayUnsupported("ray.cancel(ObjectRefGenerator)")
    if not isinstance(ray_waitable, ray.ObjectRef):
        raise TypeError(
            "ray.cancel() only supported for object refs. "
            f"For actors, try ray.kill(). Got: {type(ray_waitable)}."
        )
    engine.cancel(ray_waitable, force=force)


def fake_kill(engine: Engine, actor: Any, *, no_restart: bool = True) -> None:
    if not isinstance(actor, ray.actor.ActorHandle):
        raise ValueError(
            "ray.kill() only supported for actors. For tasks, try ray.cancel(). "
            f"Got: {type(actor)}."
        )
    engine.kill_actor(handle_of(engine, actor))


def fake_get_actor(engine: Engine, name: str, namespace: str | None = None) -> FakeActorHandle:
    if not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    actor = engine.actor_by_name(name, namespace)
    if actor is None:
        raise ValueError(
            f"Failed to look up actor with name '{name}'. This could because 1. You are "
            "trying to look up a named actor you didn't create. 2. The named actor died. "
            "3. You did not use a namespace matching the namespace of the actor."
        )
    return FakeActorHandle(engine, actor)


def fake_get_gpu_ids(engine: Engine) -> list[int]:
    ctx = current(engine)
    return gpu_ids(ctx.task.gpu_alloc) if ctx is not None else []


def fake_nodes(engine: Engine) -> list[dict[str, Any]]:
    engine.require_connected("ray.nodes")
    return engine.nodes_info()


def fake_cluster_resources(engine: Engine) -> dict[str, float]:
    engine.require_connected("ray.cluster_resources")
    return engine.cluster_resources()


def fake_available_resources(engine: Engine) -> dict[str, float]:
    engine.require_connected("ray.available_resources")
    return engine.available_resources()


def fake_get_runtime_context(engine: Engine) -> FakeRuntimeContext:
    return FakeRuntimeContext(engine)


# ---------------------------------------------------------------------- ray.util.*


def fake_get_node_ip_address(engine: Engine, address: str = "8.8.8.8:53") -> str:
    ctx = current(engine)
    return (ctx.node if ctx is not None else engine.head).ip


def fake_list_named_actors(engine: Engine, all_namespaces: bool = False) -> list[Any]:
    return engine.named_actors(all_namespaces)


# ---------------------------------------------------------------------- placement groups


def group_of(engine: Engine, placement_group: Any) -> Group:
    """The engine's record of a ``PlacementGroup`` handle (or its id)."""
    pg_id = placement_group if isinstance(placement_group, PlacementGroupID) else placement_group.id
    group = engine.group(pg_id.binary())
    if group is None:
        raise ValueError(
            f"placement group {pg_id.hex()} is not one of this fake Ray cluster's: it was "
            "created by real Ray (or by another fake cluster). Create placement groups while "
            "the fake cluster is active."
        )
    return group


def fake_placement_group(
    engine: Engine,
    bundles: list[dict[str, float]],
    strategy: str | None = None,
    name: str = "",
    lifetime: str | None = None,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: list[dict[str, str]] | None = None,
    topology_strategy: dict[str, str] | None = None,
) -> PlacementGroup:
    engine.auto_init()
    validate_placement_group(
        bundles=bundles,
        strategy=strategy,
        lifetime=lifetime,
        _soft_target_node_id=_soft_target_node_id,
        bundle_label_selector=bundle_label_selector,  # type: ignore[arg-type]
        topology_strategy=topology_strategy,
    )
    if topology_strategy is not None and set(topology_strategy) - {NODE_ID_LABEL_KEY}:
        raise FakeRayUnsupported(
            "ray.util.placement_group(topology_strategy=...)",
            "topology labels other than ray.io/node-id (GPU domains) are not modelled",
        )
    node_strategy = _derive_node_level_strategy(strategy, topology_strategy)
    group = engine.create_group(
        bundles,
        node_strategy,
        name,
        lifetime,
        _soft_target_node_id,
        bundle_label_selector or None,
    )
    return PlacementGroup(
        PlacementGroupID(group.id),
        bundle_cache=[{k: float(v) for k, v in bundle.items()} for bundle in bundles],
    )


def fake_remove_placement_group(engine: Engine, placement_group: PlacementGroup) -> None:
    engine.auto_init()
    assert placement_group is not None
    engine.remove_group(group_of(engine, placement_group))


def fake_get_placement_group(engine: Engine, placement_group_name: str) -> PlacementGroup:
    if not placement_group_name:
        raise ValueError("Please supply a non-empty value to get_placement_group")
    engine.auto_init()
    group = engine.group_by_name(placement_group_name)
    if group is None:
        raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")
    return PlacementGroup(PlacementGroupID(group.id))


def fake_placement_group_table(
    engine: Engine, placement_group: PlacementGroup | None = None
) -> dict[str, Any]:
    engine.auto_init()
    if placement_group is None:
        return engine.all_group_tables()
    group = engine.group(placement_group.id.binary())
    return {} if group is None else engine.group_table(group)


def fake_get_current_placement_group(engine: Engine) -> PlacementGroup | None:
    ctx = current(engine)
    if ctx is None or ctx.task.group is None:
        return None
    return PlacementGroup(PlacementGroupID(ctx.task.group.id))


def fake_call_placement_group_ready_async(engine: Engine, pg: PlacementGroup) -> FakeObjectRef:
    """``pg.ready()`` (Ray's ``_call_placement_group_ready_async``)."""
    return engine.group_ready_ref(group_of(engine, pg))


def fake_call_placement_group_ready(
    engine: Engine, pg_id: PlacementGroupID, timeout_seconds: float
) -> bool:
    """``pg.wait(timeout)`` (Ray's ``_call_placement_group_ready``)."""
    group = engine.group(pg_id.binary())
    if group is None:
        raise Exception(f"Placement group {pg_id!r} does not exist.")
    return engine.wait_group(group, timeout_seconds)


def fake_get_bundle_cache(engine: Engine, pg_id: PlacementGroupID) -> list[dict[str, float]]:
    """``pg.bundle_specs`` of a handle without a cache (Ray's ``_get_bundle_cache``)."""
    return group_of(engine, pg_id).bundle_specs


# ---------------------------------------------------------------------- remote functions


def _function_descriptor(rf: Any) -> Any:
    descriptor = rf._function_descriptor
    if descriptor is None:
        descriptor = PythonFunctionDescriptor.from_function(rf._function, rf._uuid)
    return descriptor


def _scheduling(
    engine: Engine,
    options: dict[str, Any],
    resources: dict[str, Any],
    placement_resources: dict[str, Any],
    what: str,
) -> dict[str, Any]:
    """Resolve a task's or actor's scheduling options the way Ray's ``_remote`` does."""
    strategy = options["scheduling_strategy"]
    placement_group = options["placement_group"]
    bundle_index = options["placement_group_bundle_index"]
    capture = options["placement_group_capture_child_tasks"]
    out: dict[str, Any] = {"strategy": "DEFAULT"}
    if strategy is None or not isinstance(strategy, PlacementGroupSchedulingStrategy):
        _warn_if_using_deprecated_placement_group(options, 4)
    if strategy is None or isinstance(strategy, PlacementGroupSchedulingStrategy):
        if isinstance(strategy, PlacementGroupSchedulingStrategy):
            placement_group = strategy.placement_group
            bundle_index = strategy.placement_group_bundle_index
            capture = strategy.placement_group_capture_child_tasks
        ctx = current(engine)
        if capture is None:
            capture = bool(ctx is not None and ctx.task.capture_child_tasks)
        placement_group = _configure_placement_group_based_on_context(
            capture,
            bundle_index,
            resources,
            placement_resources,
            what,
            placement_group=placement_group,
        )
        if not placement_group.is_empty:
            out.update(
                strategy="PLACEMENT_GROUP",
                group=group_of(engine, placement_group),
                bundle_index=bundle_index,
                capture_child_tasks=bool(capture),
            )
        return out
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        out.update(
            strategy="NODE_AFFINITY",
            affinity_node_id=strategy.node_id,
            affinity_soft=strategy.soft,
        )
        return out
    if strategy in ("DEFAULT", "SPREAD"):
        out["strategy"] = strategy
        return out
    raise FakeRayUnsupported(f"scheduling_strategy={type(strategy).__name__}")


def _unsupported_options(options: dict[str, Any], api: str) -> None:
    if options.get("fallback_strategy"):
        raise FakeRayUnsupported(f"{api}(fallback_strategy=...)")


def _public_options(given: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None and not k.startswith("_")}


def fake_remote_function_remote(
    engine: Engine,
    rf: Any,
    args: Any = None,
    kwargs: Any = None,
    serialized_runtime_env_info: str | None = None,
    **task_options: Any,
) -> Any:
    """``RemoteFunction._remote``: what ``f.remote()`` and ``f.options(...).remote()`` run."""
    task_options.pop("max_calls", None)
    engine.auto_init()
    given = dict(task_options)
    descriptor = _function_descriptor(rf)
    engine.check_function_serializable(rf._function, descriptor.repr)
    for key, option in ray_option_utils.task_options.items():
        default = option.default_value
        if key == "max_retries":
            default = int(os.environ.get("RAY_TASK_MAX_RETRIES", default))
        task_options[key] = task_options.get(key, default)
    task_options.pop("max_calls", None)
    _unsupported_options(task_options, "remote function .options")
    num_returns = task_options["num_returns"]
    if num_returns is None:
        num_returns = "streaming" if rf._is_generator else 1
    if num_returns in ("dynamic", "streaming") or rf._is_generator:
        raise FakeRayUnsupported("generator tasks (num_returns='streaming' or 'dynamic')")
    retry_exceptions = task_options["retry_exceptions"]
    if isinstance(retry_exceptions, list | tuple):
        retry_exceptions = tuple(retry_exceptions)
    resources = resources_from_ray_options(task_options)
    scheduling = _scheduling(engine, task_options, resources, {}, descriptor.function_name)
    name = task_options["name"] or descriptor.function_name

    def invocation(args: Any, kwargs: Any) -> Any:
        task = engine.submit(
            kind="task",
            function=rf._function,
            function_name=function_path(rf._function),
            name=name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            options=_public_options(given),
            resources=resources,
            num_returns=int(num_returns),
            label_selector=task_options.get("label_selector") or None,
            runtime_env=dict(task_options["runtime_env"])
            if task_options.get("runtime_env")
            else None,
            max_retries=int(task_options["max_retries"]),
            retry_exceptions=retry_exceptions,
            **scheduling,
        )
        refs = [FakeObjectRef.of(oid) for oid in task.return_ids]
        if len(refs) == 1:
            return refs[0]
        return refs or None

    if rf._decorator is not None:
        invocation = rf._decorator(invocation)
    return invocation(args, kwargs)


def fake_actor_class_remote(
    engine: Engine, actor_class: Any, args: Any = None, kwargs: Any = None, **actor_options: Any
) -> FakeActorHandle:
    """``ActorClass._remote``: what ``A.remote()`` and ``A.options(...).remote()`` run."""
    engine.auto_init()
    given = dict(actor_options)
    meta = actor_class.__ray_metadata__
    user_cls: type = getattr(meta.modified_class, "__ray_actor_class__", meta.modified_class)
    for key, option in ray_option_utils.actor_options.items():
        actor_options[key] = actor_options.get(key, option.default_value)
    actor_options.pop("concurrency_groups", None)
    _unsupported_options(actor_options, "actor .options")
    name = actor_options["name"]
    namespace = actor_options["namespace"]
    if namespace is not None:
        ray._private.utils.validate_namespace(namespace)
    lifetime = actor_options["lifetime"]
    if lifetime not in (None, "detached", "non_detached"):
        raise ValueError(
            "actor `lifetime` argument must be one of 'detached', 'non_detached' and 'None'."
        )
    resources = resources_from_ray_options(actor_options)
    if not set(resources).difference({"memory", "object_store_memory"}):
        resources.setdefault("CPU", 0)
        placement = dict(resources)
        placement["CPU"] = placement["CPU"] + 1
    else:
        resources.setdefault("CPU", 1)
        placement = dict(resources)
    scheduling = _scheduling(engine, actor_options, resources, placement, meta.class_name)
    path = function_path(user_cls)

    def submit(actor: Any) -> Any:
        return engine.submit(
            kind="actor_creation",
            function=user_cls,
            function_name=path,
            name=f"{meta.class_name}.__init__",
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            options=_public_options(given),
            resources=resources,
            placement_resources=placement,
            num_returns=1,
            label_selector=actor_options.get("label_selector") or None,
            runtime_env=dict(actor_options["runtime_env"])
            if actor_options.get("runtime_env")
            else None,
            actor=actor,
            **scheduling,
        )

    actor, _ = engine.create_actor(
        cls=user_cls,
        class_name=meta.class_name,
        name=name,
        namespace=namespace,
        get_if_exists=bool(actor_options.get("get_if_exists")),
        submit=submit,
    )
    return FakeActorHandle(engine, actor)


def unsupported(api: str) -> Callable[..., Any]:
    """An implementation that refuses ``api`` (see :class:`FakeRayUnsupported`)."""

    def refuse(engine: Engine, *args: Any, **kwargs: Any) -> Any:
        raise FakeRayUnsupported(api)

    refuse.__name__ = f"unsupported[{api}]"
    return refuse
