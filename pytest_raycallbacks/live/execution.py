"""Running code where it will run: on the cluster's workers, with every wait bounded.

Driver-side halves of :mod:`.remote`. Contract:

* :func:`run_initialize_node` runs ``initialize_node`` in a fresh :class:`~.remote.NodeInitActor`
  (``num_cpus=0``, optionally pinned to a node), with the callbacks loaded on the worker.
  Import-path callbacks travel as text; object callbacks are pickled in the driver and
  rebuilt on the worker, which proves they ship. The driver's ``sys.path`` goes along
  (``ship_sys_path``, default on for local clusters) so what imports in the driver imports
  on the worker. Errors come back as themselves, with a note saying where they were raised;
  a spec that loads in the driver but not on the worker raises
  :class:`~.errors.ClusterImportError` with the fix; an object that does not rebuild raises
  :class:`~.errors.NotShippableError`. Unless ``keep_placement_group`` is set, the
  placement group is removed and the actor killed (and confirmed dead) before returning, so
  a run leaves nothing behind.
* :func:`check_shippable` really sends an object to a worker and rebuilds it there.
* :func:`final_group_missing_model` checks, with one task pinned to each node of a run's
  final placement group, that the node holds the model files the run asked for.
* :func:`run_remote`, :func:`gpu_view` and :func:`wait_placement_group` are bounded
  building blocks; their timeouts raise :class:`~.errors.WaitTimeoutError` naming what was
  awaited.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .environment import shippable_sys_path
from .errors import ClusterImportError, LiveClusterError, NotShippableError, WaitTimeoutError
from .inventory import our_actors
from .remote import (
    GpuView,
    InitEnvelope,
    NodeInitActor,
    RemoteInitResult,
    TransportedError,
    WorkerPlace,
    cloudpickle,
    gpu_view,
    model_missing_here,
    safe_unpickle_probe,
)
from .waits import ray_get, wait_until
from .wording import error_text, short_id


class ClusterContext(Protocol):
    """What the helpers need from the cluster handle."""

    @property
    def namespace(self) -> str: ...
    @property
    def is_local(self) -> bool: ...
    @property
    def job_ids(self) -> tuple[str, ...]: ...
    @property
    def model_cache_dir(self) -> str | None: ...
    @property
    def task_timeout_s(self) -> float: ...
    @property
    def placement_group_timeout_s(self) -> float: ...

    def ensure_connected(self) -> Any: ...


@dataclass(frozen=True)
class ShipReport:
    """An object rebuilt on a worker: where, as what type, from which module file."""

    place: WorkerPlace
    type_name: str
    module_file: str
    size_bytes: int


def node_affinity(node_id: str | None) -> dict[str, Any]:
    """Ray options pinning a task or actor to ``node_id`` (none when it is ``None``)."""
    if node_id is None:
        return {}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)}


def _sys_path_for(cluster: ClusterContext, ship_sys_path: bool | None) -> list[str]:
    ship = cluster.is_local if ship_sys_path is None else ship_sys_path
    return shippable_sys_path() if ship else []


def run_remote(
    cluster: ClusterContext,
    fn: Callable[..., Any],
    *args: Any,
    what: str | None = None,
    timeout_s: float | None = None,
    **options: Any,
) -> Any:
    """Run ``fn(*args)`` as a Ray task with ``options`` (``num_cpus`` defaults to 0) and
    return its result within ``timeout_s`` (default: the cluster's task bound)."""
    ray = cluster.ensure_connected()
    options.setdefault("num_cpus", 0)
    ref = ray.remote(fn).options(**options).remote(*args)
    name = getattr(fn, "__qualname__", repr(fn))
    return ray_get(
        ray,
        ref,
        what=what or f"task {name} to finish",
        timeout_s=timeout_s or cluster.task_timeout_s,
    )


def wait_placement_group(
    cluster: ClusterContext, group: Any, timeout_s: float | None = None
) -> None:
    """Wait until ``group`` is ready; the timeout names its bundles and the free resources."""
    ray = cluster.ensure_connected()
    bound = timeout_s or cluster.placement_group_timeout_s
    if group.wait(bound):
        return
    raise WaitTimeoutError(
        f"placement group {group.id.hex()} (bundles {group.bundle_specs}) to be ready",
        bound,
        f"the cluster has {ray.cluster_resources()} in total and {ray.available_resources()} "
        "available",
    )


def run_gpu_view(
    cluster: ClusterContext,
    *,
    num_gpus: float = 1,
    placement_group: Any = None,
    bundle_index: int = -1,
    node_id: str | None = None,
    timeout_s: float | None = None,
) -> GpuView:
    """What a task holding ``num_gpus`` GPUs (in ``placement_group``'s bundle, if given)
    sees: ``CUDA_VISIBLE_DEVICES``, Ray's GPU ids, torch's device count."""
    options: dict[str, Any] = {"num_gpus": num_gpus}
    if placement_group is not None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=placement_group, placement_group_bundle_index=bundle_index
        )
    else:
        options.update(node_affinity(node_id))
    where = f"bundle {bundle_index} of placement group" if placement_group is not None else "node"
    result: GpuView = run_remote(
        cluster,
        gpu_view,
        what=f"a task holding {num_gpus:g} GPU(s) in a {where} to report its GPUs",
        timeout_s=timeout_s,
        **options,
    )
    return result


def check_shippable(
    cluster: ClusterContext,
    obj: Any,
    *,
    node_id: str | None = None,
    ship_sys_path: bool | None = None,
    timeout_s: float | None = None,
) -> ShipReport:
    """Pickle ``obj`` here and rebuild it on a worker; raise :class:`NotShippableError`
    when either fails (a local round trip passes objects a worker cannot rebuild)."""
    label = _label(obj)
    try:
        payload: bytes = cloudpickle().dumps(obj)
    except Exception as exc:
        raise NotShippableError(
            f"{label} cannot be sent to a Ray worker: it does not pickle in this driver "
            f"({error_text(exc)}). Callbacks must not hold locks, open files, "
            "sockets or other process-local state; give them an import path instead.",
            stage="pickle",
            cause=error_text(exc),
        ) from exc
    answer = run_remote(
        cluster,
        safe_unpickle_probe,
        payload,
        _sys_path_for(cluster, ship_sys_path),
        what=f"a Ray worker to rebuild {label}",
        timeout_s=timeout_s,
        **node_affinity(node_id),
    )
    if len(answer) == 2:
        place, error = answer
        raise _not_rebuilt(label, error, place)
    place, type_name, module_file = answer
    return ShipReport(place, type_name, module_file, len(payload))


def _not_rebuilt(label: str, error: TransportedError, place: WorkerPlace) -> NotShippableError:
    return NotShippableError(
        f"{label} pickles in this driver but a Ray worker (node {short_id(place.node_id)}, pid "
        f"{place.pid}) cannot rebuild it: {error.type_name.rsplit('.', 1)[-1]}: {error.message}. "
        "A local pickle round trip does not catch this: the worker imports the object's "
        "module by name, and that module (a test module, one imported with "
        "--import-mode=importlib, or one loaded from a file path) is not importable there. "
        "Define the callback in a module the cluster can import (installed, on PYTHONPATH, "
        "or shipped with runtime_env py_modules/working_dir) and prefer an import path spec.",
        stage="unpickle",
        cause=f"{error.type_name}: {error.message}",
    )


def run_initialize_node(
    cluster: ClusterContext,
    config_or_specs: Any,
    *,
    node_id: str | None = None,
    timeout_s: float | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    ship_sys_path: bool | None = None,
    keep_placement_group: bool = False,
    **init_options: Any,
) -> RemoteInitResult:
    """Run ``initialize_node`` inside an actor on the cluster; see the module docstring.

    ``config_or_specs`` is an ``LLMConfig`` or a list of callback specs (then the config is
    the bundled tiny model with those callbacks). ``init_options`` go to
    ``initialize_node`` (``placement_group_timeout_s``, ``callback_timeout_s``,
    ``download_timeout_s``, ``error_policy``); ``timeout_s`` bounds the whole run.
    """
    from reference_runner import TINY_MODEL_PATH, LLMConfig

    ray = cluster.ensure_connected()
    config = (
        config_or_specs
        if isinstance(config_or_specs, LLMConfig)
        else LLMConfig(model_id=TINY_MODEL_PATH, callbacks=list(config_or_specs))
    )
    if config.model_cache_dir is None and cluster.model_cache_dir is not None:
        config = config.model_copy(update={"model_cache_dir": cluster.model_cache_dir})
    objects = [cb for cb in config.callbacks if not isinstance(cb, str)]
    payload: str | bytes
    if objects:
        try:
            payload = cloudpickle().dumps(config)
        except Exception as exc:
            raise NotShippableError(
                f"the config's object callbacks {[_label(o) for o in objects]} cannot be sent "
                f"to the cluster: they do not pickle in this driver ({error_text(exc)}). "
                "Use import-path specs ('pkg.module:callback') instead.",
                stage="pickle",
                cause=error_text(exc),
            ) from exc
    else:
        payload = config.model_dump_json()
    init_options.setdefault("placement_group_timeout_s", cluster.placement_group_timeout_s)
    bound = timeout_s or cluster.task_timeout_s
    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, **node_affinity(node_id)}
    if runtime_env:
        options["runtime_env"] = dict(runtime_env)
    actor_cls = ray.remote(NodeInitActor).options(**options)
    actor = actor_cls.remote(_sys_path_for(cluster, ship_sys_path))
    specs = [_label(cb) for cb in config.callbacks]
    what = f"initialize_node with callbacks {specs} in an actor" + (
        f" on node {short_id(node_id)}" if node_id else ""
    )
    try:
        envelope: InitEnvelope = ray_get(
            ray,
            actor.run.remote(payload, TINY_MODEL_PATH, init_options, keep_placement_group),
            what=what,
            timeout_s=bound,
        )
    except WaitTimeoutError:
        _kill_and_confirm(cluster, ray, actor)
        raise
    except ray.exceptions.RayActorError as exc:
        _kill_and_confirm(cluster, ray, actor)
        raise LiveClusterError(
            f"the initialize_node actor died or could not start on the cluster: {exc}. If the "
            "cluster cannot import pytest_raycallbacks itself, install pytest-raycallbacks "
            "(and Ray of the same version) in the cluster's environment."
        ) from exc
    if envelope.error is not None or not keep_placement_group:
        _kill_and_confirm(cluster, ray, actor)
    if envelope.error is not None:
        raise _translate(envelope.error, envelope.place, config, objects)
    assert envelope.result is not None
    if keep_placement_group:
        object.__setattr__(envelope.result, "actor", actor)
    return envelope.result


def final_group_missing_model(
    cluster: ClusterContext, result: RemoteInitResult, *, timeout_s: float | None = None
) -> dict[str, str] | None:
    """``{node id: what it lacks}`` for the nodes of ``result``'s final placement group,
    each read by a task pinned to that node (``{}``: every node holds the model files);
    ``None`` when the rule does not apply (``skip_default_init`` was set). See
    docs/design.md §The callback contract."""
    from reference_runner import NodeModelDownloadable
    from reference_runner.reserved import SKIP_DEFAULT_INIT, WORKER_NODE_DOWNLOAD_MODEL

    if result.data.get(SKIP_DEFAULT_INIT) is True:
        return None
    if not result.nodes:
        return {"<no placement group>": "the run ended without a placed placement group"}
    choice = result.data.get(WORKER_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.MODEL_AND_TOKENIZER)
    ray = cluster.ensure_connected()
    task = ray.remote(model_missing_here)
    refs = [
        task.options(num_cpus=0, **node_affinity(node)).remote(result.download_result, choice)
        for node in result.nodes
    ]
    missing: dict[str, str] = {}
    for node, ref in zip(result.nodes, refs, strict=True):
        missing.update(
            ray_get(
                ray,
                ref,
                what=f"a task on node {short_id(node)} to list its model files",
                timeout_s=timeout_s or cluster.task_timeout_s,
            )
        )
    return missing


def release_result(cluster: ClusterContext, result: RemoteInitResult) -> None:
    """Free what a ``keep_placement_group=True`` run kept: its placement group and actor."""
    ray = cluster.ensure_connected()
    if result.placement_group is not None:
        with contextlib.suppress(Exception):
            ray.util.remove_placement_group(result.placement_group)
    if result.actor is not None:
        _kill_and_confirm(cluster, ray, result.actor)


def _kill_and_confirm(cluster: ClusterContext, ray: Any, actor: Any) -> None:
    actor_id = actor._actor_id.hex()
    try:
        ray.kill(actor, no_restart=True)
    except Exception:
        return
    wait_until(
        lambda: all(a.id != actor_id for a in our_actors(ray, cluster.job_ids)),
        what=f"actor {actor_id} to be dead after ray.kill",
        timeout_s=30.0,
    )


def _translate(
    error: TransportedError, place: WorkerPlace, config: Any, objects: Sequence[Any]
) -> BaseException:
    where = f"on the Ray cluster (node {short_id(place.node_id)}, pid {place.pid})"
    if error.stage == "unpickle":
        labels = ", ".join(_label(o) for o in objects) or "the config"
        return _not_rebuilt(f"the config with object callbacks [{labels}]", error, place)
    if error.is_load_error and isinstance(error.spec, str):
        driver_file = _loads_in_driver(error.spec)
        if driver_file is not None:
            return ClusterImportError(error.spec, _import_fix(error, driver_file, where))
    exc = error.rebuild()
    if error.stage == "config":
        exc.add_note(
            f"raised {where} while reading the config the driver sent: is the same version "
            "of pytest-raycallbacks installed on the cluster?"
        )
    else:
        exc.add_note(f"raised {where} while running initialize_node in an actor")
    exc.add_note("remote traceback:\n" + error.traceback.rstrip())
    return exc


def _loads_in_driver(spec: str) -> str | None:
    """The file of the spec's module when the spec loads in this driver, else ``None``."""
    from reference_runner import load_callback

    try:
        target = load_callback(spec)
    except Exception:
        return None
    module_name = getattr(target, "__module__", None) or type(target).__module__
    module = sys.modules.get(str(module_name))
    return str(getattr(module, "__file__", None) or "<no file>")


def _import_fix(error: TransportedError, driver_file: str, where: str) -> str:
    folder = os.path.dirname(driver_file)
    top = (error.spec or "").split(":", 1)[0].split(".", 1)[0]
    package_dir = os.path.join(folder, top)
    module_path = package_dir if os.path.isdir(package_dir) else driver_file
    return (
        f"it loads in this driver (from {driver_file}) but not {where}: {error.reason}. "
        "The cluster's workers do not see folders that pytest or your code added to the "
        "driver's sys.path. To fix it: on a local cluster keep ship_sys_path=True (the "
        "default) or put the folder on PYTHONPATH before the session starts; on a remote "
        "cluster install the package in the cluster's environment, or ship it with a runtime "
        f'env, e.g. RAYCALLBACKS_RUNTIME_ENV=\'{{"py_modules": ["{module_path}"]}}\' or '
        f'\'{{"working_dir": "{folder}"}}\'.'
    )


def _label(obj: Any) -> str:
    if isinstance(obj, str):
        return repr(obj)
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    kind = "" if hasattr(obj, "__qualname__") else "instance of "
    return f"{kind}{module}.{name}"
