"""Code that runs on Ray workers, and the records it sends back.

It imports neither pytest nor anything of the plugin beyond this package's data classes,
so a worker needs only ``reference_runner`` and this module (both ship with
``pytest-raycallbacks``). Contract:

* :class:`NodeInitActor` runs :func:`reference_runner.initialize_node` inside an actor, as a
  serving replica would: the config arrives as JSON (import-path callbacks, loaded on the
  worker) or as cloudpickle bytes (object callbacks, rebuilt on the worker). The driver's
  ``sys.path`` entries it is given are put first on the worker's ``sys.path`` before anything
  is loaded. It returns an :class:`InitEnvelope`: a :class:`RemoteInitResult`, or the error
  as a :class:`TransportedError` (never an exception that could fail to unpickle).
* :func:`unpickle_probe` rebuilds cloudpickled bytes on a worker and says what it got.
* :func:`gpu_view` reports what a worker sees of its GPUs (``CUDA_VISIBLE_DEVICES``,
  ``ray.get_gpu_ids()``, ``torch.cuda.device_count()`` when torch is installed).
* :func:`model_missing_here` lists, on the node it is pinned to, which model files that
  node lacks, reading the download's folder there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import pickle
import socket
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import RemoteError, rebuild_exception


def cloudpickle() -> Any:
    """Ray's cloudpickle (what Ray itself uses to ship functions and objects)."""
    return importlib.import_module("ray.cloudpickle")


def prepare_sys_path(entries: Sequence[str]) -> None:
    """Put ``entries`` first on ``sys.path`` (in order) and drop stale import caches."""
    for entry in reversed(list(entries)):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    importlib.invalidate_caches()


@dataclass(frozen=True)
class WorkerPlace:
    """Where a piece of remote code ran and what it saw of its accelerators."""

    node_id: str
    pid: int
    hostname: str
    cuda_visible_devices: str | None
    ray_gpu_ids: tuple[str, ...]


def where_am_i() -> WorkerPlace:
    """This worker's node, pid and GPU assignment."""
    import ray

    try:
        gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
    except Exception:
        gpu_ids = ()
    return WorkerPlace(
        node_id=ray.get_runtime_context().get_node_id(),
        pid=os.getpid(),
        hostname=socket.gethostname(),
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        ray_gpu_ids=gpu_ids,
    )


@dataclass(frozen=True)
class GpuView:
    """What a worker sees of its GPUs. ``torch_device_count`` is ``None`` without torch."""

    place: WorkerPlace
    visible_devices: tuple[str, ...]
    torch_device_count: int | None

    @property
    def cuda_visible_devices(self) -> str | None:
        return self.place.cuda_visible_devices


def gpu_view() -> GpuView:
    """Ray task/actor body: report this worker's view of its GPUs."""
    place = where_am_i()
    visible = tuple(v.strip() for v in (place.cuda_visible_devices or "").split(",") if v.strip())
    torch_count: int | None = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_count = int(torch.cuda.device_count())
    return GpuView(place, visible, torch_count)


def detect_gpus_on_node() -> Any:
    """Ray task body: this node's physical GPUs (a ``GpuDetection``), ignoring the
    ``CUDA_VISIBLE_DEVICES`` Ray set for this task."""
    from .gpus import detect_physical_gpus

    return detect_physical_gpus(env={})


def model_missing_here(download_result: Any, choice: Any) -> dict[str, str]:
    """Ray task body, pinned to a node: ``{node id: what it lacks}`` for this node (``{}``
    when its download's folder holds every file ``choice`` asks for), from the files
    present here (:func:`reference_runner.download_check.nodes_missing_model`)."""
    from reference_runner.download_check import nodes_missing_model

    node_id = where_am_i().node_id
    return nodes_missing_model([node_id], download_result, choice, on_disk=True)


@dataclass(frozen=True)
class TransportedError:
    """An exception raised on a worker, in a form that always crosses back.

    ``pickled`` holds the exception itself when it survives a pickle round trip on the
    worker; ``spec``/``reason`` are set for a ``CallbackLoadError``.
    """

    type_name: str
    message: str
    traceback: str
    pickled: bytes | None
    stage: str
    spec: Any = None
    reason: str | None = None
    is_load_error: bool = False

    @classmethod
    def capture(cls, exc: BaseException, stage: str) -> TransportedError:
        from reference_runner.errors import CallbackLoadError

        pickled = _pickled_exception(exc)
        load_error = isinstance(exc, CallbackLoadError)
        return cls(
            type_name=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            pickled=pickled,
            stage=stage,
            spec=getattr(exc, "spec", None) if load_error else None,
            reason=getattr(exc, "reason", None) if load_error else None,
            is_load_error=load_error,
        )

    def rebuild(self) -> BaseException:
        """The original exception when it unpickles here, else a :class:`RemoteError`."""
        if self.pickled is not None:
            try:
                exc = pickle.loads(self.pickled)
            except Exception:
                exc = None
            if isinstance(exc, BaseException):
                return exc
        return RemoteError(f"{self.type_name}: {self.message}", type_name=self.type_name)


class _ByState:
    """Pickles an exception as (class, args, attributes), for exception classes whose
    ``__init__`` does not accept their own ``args`` back (plain pickling fails for them)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild_exception, (type(self.exc), self.exc.args, dict(self.exc.__dict__)))


def _pickled_exception(exc: BaseException) -> bytes | None:
    """``exc`` pickled so that it unpickles (checked here), plainly or by state; ``None``
    when neither works."""
    for candidate in (exc, _ByState(exc)):
        try:
            data = pickle.dumps(candidate)
            if isinstance(pickle.loads(data), type(exc)):
                return data
        except Exception:
            continue
    return None


@dataclass(frozen=True)
class Unshippable:
    """Stands in for a ``data`` value that could not be sent back from the worker."""

    type_name: str
    text: str


@dataclass(frozen=True)
class RemoteInitResult:
    """What ``initialize_node`` produced on the cluster.

    ``place`` is where it ran. ``placement_group`` is the live group when it was kept
    (``keep_placement_group=True``), else ``None``; ``placement_group_id``, ``bundles``,
    ``strategy`` and ``bundle_nodes`` (bundle index -> node id) describe it either way.
    ``data`` is the final shared data, with values that could not be sent back replaced
    by :class:`Unshippable`. ``trace`` and ``errors`` are the runner's.
    """

    place: WorkerPlace
    placement_group: Any
    placement_group_id: str | None
    bundles: tuple[Mapping[str, float], ...]
    strategy: str | None
    bundle_nodes: Mapping[int, str]
    runtime_env: Mapping[str, Any] | None
    extra_init_kwargs: Mapping[str, Any]
    download_result: Any
    data: Mapping[str, Any]
    trace: tuple[Any, ...] = ()
    errors: tuple[Any, ...] = ()
    duration_s: float = 0.0
    actor: Any = field(default=None, compare=False)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The distinct nodes the placement group's bundles were placed on."""
        return tuple(sorted(set(self.bundle_nodes.values())))


@dataclass(frozen=True)
class InitEnvelope:
    """The actor's answer: a result or an error (never both), and where it ran."""

    result: RemoteInitResult | None
    error: TransportedError | None
    place: WorkerPlace


def unpickle_probe(payload: bytes, sys_path: Sequence[str]) -> tuple[WorkerPlace, str, str]:
    """Rebuild ``payload`` (cloudpickle bytes) on this worker.

    Returns where it ran, the rebuilt object's type and the file of that type's module.
    """
    prepare_sys_path(sys_path)
    obj = cloudpickle().loads(payload)
    cls = type(obj)
    module = sys.modules.get(cls.__module__)
    return (
        where_am_i(),
        f"{cls.__module__}.{cls.__qualname__}",
        str(getattr(module, "__file__", None) or "<no file>"),
    )


def safe_unpickle_probe(
    payload: bytes, sys_path: Sequence[str]
) -> tuple[WorkerPlace, str, str] | tuple[WorkerPlace, TransportedError]:
    """Ray task body: :func:`unpickle_probe`, returning an error as a
    :class:`TransportedError` (with where it happened) instead of raising it."""
    try:
        return unpickle_probe(payload, sys_path)
    except Exception as exc:
        return where_am_i(), TransportedError.capture(exc, "unpickle")


class NodeInitActor:
    """Runs ``initialize_node`` on the node it was placed on, like a serving replica."""

    def __init__(self, sys_path: Sequence[str]) -> None:
        prepare_sys_path(sys_path)

    def place(self) -> WorkerPlace:
        return where_am_i()

    async def run(
        self,
        payload: str | bytes,
        driver_tiny_model: str,
        options: Mapping[str, Any],
        keep_placement_group: bool,
    ) -> InitEnvelope:
        import time

        import ray

        from reference_runner import TINY_MODEL_PATH, LLMConfig, initialize_node

        try:
            if isinstance(payload, str):
                config = LLMConfig.model_validate_json(payload)
            else:
                config = cloudpickle().loads(payload)
        except Exception as exc:
            stage = "config" if isinstance(payload, str) else "unpickle"
            return InitEnvelope(None, TransportedError.capture(exc, stage), where_am_i())
        if config.model_id == driver_tiny_model and not os.path.isdir(config.model_id):
            config = config.model_copy(update={"model_id": TINY_MODEL_PATH})
        started = time.monotonic()
        try:
            output = await initialize_node(config, **dict(options))
        except BaseException as exc:
            error = TransportedError.capture(exc, "initialize_node")
            return InitEnvelope(None, error, where_am_i())
        duration = time.monotonic() - started
        group = output.placement_group
        table: Mapping[str, Any] = {}
        with contextlib.suppress(Exception):
            table = ray.util.placement_group_table(group)
        group_id = getattr(getattr(group, "id", None), "hex", lambda: None)()
        if not keep_placement_group and group is not None:
            with contextlib.suppress(Exception):
                ray.util.remove_placement_group(group)
        place = where_am_i()
        result = RemoteInitResult(
            place=place,
            placement_group=group if keep_placement_group else None,
            placement_group_id=group_id,
            bundles=tuple(dict(b) for _, b in sorted((table.get("bundles") or {}).items())),
            strategy=table.get("strategy"),
            bundle_nodes=dict(table.get("bundles_to_node_id") or {}),
            runtime_env=_shippable(output.runtime_env),
            extra_init_kwargs=_shippable(output.extra_init_kwargs),
            download_result=_shippable(output.download_result),
            data={k: _shippable(v) for k, v in output.data.items()},
            trace=tuple(_without_bad_error(t) for t in output.trace),
            errors=tuple(_without_bad_error(e) for e in output.errors),
            duration_s=duration,
        )
        return InitEnvelope(result, None, place)


def _shippable(value: Any) -> Any:
    pickler = cloudpickle()
    try:
        pickler.loads(pickler.dumps(value))
    except Exception:
        text = repr(value)
        return Unshippable(
            type(value).__qualname__, text if len(text) < 300 else text[:297] + "..."
        )
    return value


def _without_bad_error(record: Any) -> Any:
    """A trace entry or failure whose ``error`` is replaced when it cannot cross back."""
    error = getattr(record, "error", None)
    if error is None or TransportedError.capture(error, "").pickled is not None:
        return record
    return dataclasses.replace(
        record,
        error=RemoteError(
            f"{type(error).__qualname__}: {error}", type_name=type(error).__qualname__
        ),
    )
