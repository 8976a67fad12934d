"""Routing Ray's API to the fake cluster, however it was imported, and undoing it exactly.

How (the technique freezegun uses for names already bound in loaded modules):

1. The *targets* are Ray's public functions (``ray.get``, ``ray.util.placement_group``,
   ``ray.util.state.list_nodes`` ...), the private leaves ``PlacementGroup.ready()`` /
   ``.wait()`` / ``.bundle_specs`` call (``_call_placement_group_ready_async`` ...), and the
   ``_remote`` methods of ``RemoteFunction`` and ``ActorClass`` (so ``@ray.remote``
   functions and actor classes defined before the fake started reach it too).
2. Each target gets one *dispatcher* per process (a ``functools.wraps`` copy): while a fake
   cluster is active (:mod:`.active` says which) it calls the fake implementation and logs
   the call; otherwise it calls the original. Functions the fake does not model get a
   dispatcher that raises :class:`~.errors.FakeRayUnsupported`.
3. On activation every module in ``sys.modules`` whose namespace holds a target (compared by
   identity: ``import ray; ray.get``, ``from ray.util import placement_group`` and
   ``from ray.util.placement_group import placement_group`` done at import time alike) has
   that name rebound to the dispatcher, and each rebinding is recorded.
4. On deactivation every recorded name is set back to the very same original object, and a
   sweep restores any dispatcher a module picked up while the fake was active (a module
   imported during the test). :func:`deactivate` runs from ``finally`` blocks, pytest's
   teardown and an ``atexit`` hook, so a failing or interrupted test still restores.

``ray.util.state`` and ``ray.autoscaler.sdk`` (:data:`LATE_MODULES`) are routed only to
refuse them, and importing them costs a tenth of a second: they are not imported at
activation. Already loaded, they are routed like the rest; imported while a fake cluster is
active, their functions are routed as soon as the import finishes (:class:`_RouteOnImport`,
on ``sys.meta_path`` while Ray's functions are routed), so they refuse loudly either way.

A caller starting many short-lived fake clusters one after another (the conformance kit: a
fresh cluster per scenario) may ask to keep the routing between them:
``activate(engine, keep_routed=True)`` leaves the dispatchers bound at the next
:func:`deactivate` (no cluster is active, so they call real Ray, as the originals would), and
the next keep-routed activation only switches the engine instead of scanning every module
twice. :func:`release_routing` (or any activation without ``keep_routed``, or exit) then
restores everything exactly as :func:`deactivate` does.

Names bound elsewhere than a module namespace (a class attribute, a default argument, a
closure) are not rebound; calls through them reach real Ray. Ray's pure-Python pieces
(``ray.remote``, ``ray.method``, option validation, scheduling strategy classes, the
``PlacementGroup`` class) are not targets: they run for real and end in the targets.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import active, environ
from .errors import FakeRayActivationError

if TYPE_CHECKING:
    from .engine import Engine

#: Modules imported (once per process) when a fake cluster starts, so their functions can
#: be rebound.
CORE_MODULES = (
    "ray",
    "ray.util",
    "ray.util.placement_group",
    "ray.runtime_context",
    "ray.remote_function",
    "ray.actor",
)
#: Modules whose functions are routed only to refuse them loudly: routed when already
#: loaded, else as soon as code under test imports them (see the module doc).
LATE_MODULES = ("ray.util.state", "ray.autoscaler.sdk")


@dataclass(frozen=True)
class Target:
    """A function (``owner`` a module name) or method (``owner`` ``module:Class``) to route."""

    owner: str
    attr: str
    api: str
    impl: Callable[..., Any]


_state_lock = threading.RLock()
_dispatchers: dict[int, Callable[..., Any]] = {}  # id(original) -> dispatcher
_originals: dict[int, Any] = {}  # id(dispatcher) -> original (keeps both alive)
_restore_log: list[tuple[dict[str, Any], str, Any]] = []
_class_log: list[tuple[type, str, Any]] = []
_atexit_registered = False
_kept = False  # routing left in place by a keep-routed activation (see the module doc)


def targets() -> list[Target]:
    """Everything routed to the fake (see the module doc). Imports Ray."""
    from . import api

    u = api.unsupported
    out = [
        Target("ray", "init", "ray.init", api.fake_init),
        Target("ray", "shutdown", "ray.shutdown", api.fake_shutdown),
        Target("ray", "is_initialized", "ray.is_initialized", api.fake_is_initialized),
        Target("ray", "get", "ray.get", api.fake_get),
        Target("ray", "put", "ray.put", api.fake_put),
        Target("ray", "wait", "ray.wait", api.fake_wait),
        Target("ray", "cancel", "ray.cancel", api.fake_cancel),
        Target("ray", "kill", "ray.kill", api.fake_kill),
        Target("ray", "get_actor", "ray.get_actor", api.fake_get_actor),
        Target("ray", "get_gpu_ids", "ray.get_gpu_ids", api.fake_get_gpu_ids),
        Target("ray", "nodes", "ray.nodes", api.fake_nodes),
        Target("ray", "cluster_resources", "ray.cluster_resources", api.fake_cluster_resources),
        Target(
            "ray", "available_resources", "ray.available_resources", api.fake_available_resources
        ),
        Target(
            "ray", "get_runtime_context", "ray.get_runtime_context", api.fake_get_runtime_context
        ),
        Target("ray", "timeline", "ray.timeline", u("ray.timeline")),
        Target("ray", "java_function", "ray.java_function", u("ray.java_function")),
        Target("ray", "cpp_function", "ray.cpp_function", u("ray.cpp_function")),
        Target("ray", "java_actor_class", "ray.java_actor_class", u("ray.java_actor_class")),
        Target(
            "ray.util",
            "get_node_ip_address",
            "ray.util.get_node_ip_address",
            api.fake_get_node_ip_address,
        ),
        Target(
            "ray.util",
            "list_named_actors",
            "ray.util.list_named_actors",
            api.fake_list_named_actors,
        ),
        Target(
            "ray.util",
            "get_node_instance_id",
            "ray.util.get_node_instance_id",
            u("ray.util.get_node_instance_id"),
        ),
        Target("ray.util", "connect", "ray.util.connect", u("ray.util.connect")),
        Target("ray.util", "disconnect", "ray.util.disconnect", u("ray.util.disconnect")),
        Target(
            "ray.util",
            "register_serializer",
            "ray.util.register_serializer",
            u("ray.util.register_serializer"),
        ),
        Target(
            "ray.util",
            "deregister_serializer",
            "ray.util.deregister_serializer",
            u("ray.util.deregister_serializer"),
        ),
        Target("ray.actor", "exit_actor", "ray.actor.exit_actor", u("ray.actor.exit_actor")),
        Target(
            "ray.autoscaler.sdk",
            "request_resources",
            "ray.autoscaler.sdk.request_resources",
            u("ray.autoscaler.sdk.request_resources"),
        ),
    ]
    pg = "ray.util.placement_group"
    out += [
        Target(pg, "placement_group", "ray.util.placement_group", api.fake_placement_group),
        Target(
            pg,
            "remove_placement_group",
            "ray.util.remove_placement_group",
            api.fake_remove_placement_group,
        ),
        Target(
            pg, "get_placement_group", "ray.util.get_placement_group", api.fake_get_placement_group
        ),
        Target(
            pg,
            "placement_group_table",
            "ray.util.placement_group_table",
            api.fake_placement_group_table,
        ),
        Target(
            pg,
            "get_current_placement_group",
            "ray.util.get_current_placement_group",
            api.fake_get_current_placement_group,
        ),
        Target(
            pg,
            "_call_placement_group_ready_async",
            "PlacementGroup.ready",
            api.fake_call_placement_group_ready_async,
        ),
        Target(
            pg,
            "_call_placement_group_ready",
            "PlacementGroup.wait",
            api.fake_call_placement_group_ready,
        ),
        Target(pg, "_get_bundle_cache", "PlacementGroup.bundle_specs", api.fake_get_bundle_cache),
        Target(
            "ray.remote_function:RemoteFunction",
            "_remote",
            "RemoteFunction.remote",
            api.fake_remote_function_remote,
        ),
        Target("ray.actor:ActorClass", "_remote", "ActorClass.remote", api.fake_actor_class_remote),
    ]
    state = sys.modules.get("ray.util.state")
    if state is not None:
        for name in getattr(state, "__all__", ()):
            if name != "StateApiClient" and callable(getattr(state, name, None)):
                out.append(
                    Target(
                        "ray.util.state",
                        name,
                        f"ray.util.state.{name}",
                        u(f"ray.util.state.{name}"),
                    )
                )
    return out


def _dispatcher(original: Any, target: Target) -> Callable[..., Any]:
    key = id(original)
    existing = _dispatchers.get(key)
    if existing is not None and _originals.get(id(existing)) is original:
        return existing
    impl, api_name = target.impl, target.api

    @functools.wraps(original)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        engine = active.active_engine_or_none()
        if engine is None:
            return original(*args, **kwargs)
        seq = engine.next_call_seq()
        try:
            result = impl(engine, *args, **kwargs)
        except BaseException as exc:
            engine.log_call(api_name, args, kwargs, exc, seq)
            raise
        engine.log_call(api_name, args, kwargs, None, seq)
        return result

    dispatch.__fake_ray_api__ = api_name  # type: ignore[attr-defined]
    _dispatchers[key] = dispatch
    _originals[id(dispatch)] = original
    return dispatch


def _unwrap(value: Any) -> Any:
    """The original behind a dispatcher left over from an earlier activation."""
    original = _originals.get(id(value))
    return original if original is not None and _dispatchers.get(id(original)) is value else value


def activate(engine: Engine, *, keep_routed: bool = False) -> None:
    """Route Ray's API to ``engine`` (see the module doc). One fake cluster at a time.
    ``keep_routed``: leave the routing in place at :func:`deactivate`, for the next
    keep-routed activation (until :func:`release_routing`)."""
    global _atexit_registered, _kept
    with _state_lock:
        if active.is_active():
            raise FakeRayActivationError(
                "another fake Ray cluster is already active in this process; one process "
                "has one Ray driver, so only one fake cluster can be active at a time"
            )
        if _kept and keep_routed:  # still routed: switch the engine only
            environ.install()
            active.set_active(engine)
            return
        _release()
        for name in CORE_MODULES:
            importlib.import_module(name)
        functions: dict[int, tuple[Any, Callable[..., Any]]] = {}
        try:
            for target in targets():
                if ":" in target.owner:
                    module_name, cls_name = target.owner.split(":")
                    cls = getattr(sys.modules[module_name], cls_name)
                    original = _unwrap(cls.__dict__[target.attr])
                    _class_log.append((cls, target.attr, original))
                    setattr(cls, target.attr, _dispatcher(original, target))
                    continue
                module = sys.modules.get(target.owner)
                original = _unwrap(getattr(module, target.attr, None))
                if original is None:
                    continue
                functions[id(original)] = (original, _dispatcher(original, target))
            _rebind_everywhere(functions)
            sys.meta_path.insert(0, _ROUTE_ON_IMPORT)
            environ.install()
        except BaseException:
            _restore()
            raise
        active.set_active(engine)
        _kept = keep_routed
        if not _atexit_registered:
            atexit.register(release_routing)
            _atexit_registered = True


class _RouteOnImport(importlib.abc.MetaPathFinder):
    """On ``sys.meta_path`` while Ray's functions are routed: a module of
    :data:`LATE_MODULES` imported then gets its functions routed right after it executes."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LATE_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_then_route(module: types.ModuleType) -> None:
            execute(module)
            _route_late(fullname)

        loader.exec_module = exec_then_route  # type: ignore[method-assign]  # this import's
        return spec


_ROUTE_ON_IMPORT = _RouteOnImport()


def _route_late(module_name: str) -> None:
    """Route the targets owned by ``module_name``, just imported, while Ray's functions are
    routed (a fake cluster is active, or the routing is kept)."""
    with _state_lock:
        if not active.is_active() and not _kept:
            return
        functions: dict[int, tuple[Any, Callable[..., Any]]] = {}
        module = sys.modules.get(module_name)
        for target in targets():
            if target.owner == module_name:
                original = _unwrap(getattr(module, target.attr, None))
                if original is not None:
                    functions[id(original)] = (original, _dispatcher(original, target))
        _rebind_everywhere(functions)


def _namespaces_holding(ids: set[int]) -> Iterator[dict[str, Any]]:
    """The ``__dict__`` of every loaded module that binds an object whose ``id`` is in ``ids``."""
    for module in list(sys.modules.values()):
        namespace = (
            getattr(module, "__dict__", None) if isinstance(module, types.ModuleType) else None
        )
        if isinstance(namespace, dict) and not ids.isdisjoint(map(id, namespace.values())):
            yield namespace


def _rebind_everywhere(functions: dict[int, tuple[Any, Callable[..., Any]]]) -> None:
    for namespace in _namespaces_holding(set(functions)):
        for name, value in list(namespace.items()):
            entry = functions.get(id(value))
            if entry is not None and entry[0] is value:
                namespace[name] = entry[1]
                _restore_log.append((namespace, name, value))


def deactivate() -> None:
    """Undo :func:`activate`: every rebound name gets its original object back (after a
    keep-routed activation: no cluster is active, the names stay routed until
    :func:`release_routing`)."""
    with _state_lock:
        if _kept:
            active.set_active(None)
            environ.uninstall()
            return
        _release()


def release_routing() -> None:
    """End the routing a keep-routed activation left (see the module doc) and deactivate:
    every rebound name gets its original object back. Idempotent."""
    with _state_lock:
        _release()


def _release() -> None:
    global _kept
    _kept = False
    if not active.is_active() and not _restore_log and not _class_log:
        return
    active.set_active(None)
    _restore()


def _restore() -> None:
    errors: list[BaseException] = []
    while _restore_log:
        namespace, name, original = _restore_log.pop()
        try:
            namespace[name] = original
        except BaseException as exc:  # pragma: no cover - a dict assignment
            errors.append(exc)
    while _class_log:
        cls, name, original = _class_log.pop()
        setattr(cls, name, original)
    while _ROUTE_ON_IMPORT in sys.meta_path:
        sys.meta_path.remove(_ROUTE_ON_IMPORT)
    _sweep()
    environ.uninstall()
    if errors:  # pragma: no cover
        raise errors[0]


def _sweep() -> None:
    """Restore dispatchers that modules bound while the fake was active."""
    ids = set(_originals)
    if not ids:
        return
    for namespace in _namespaces_holding(ids):
        for name, value in list(namespace.items()):
            original = _originals.get(id(value))
            if original is not None and _dispatchers.get(id(original)) is value:
                namespace[name] = original
