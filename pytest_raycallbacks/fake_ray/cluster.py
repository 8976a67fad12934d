"""``FakeRayCluster``: the in-memory Ray cluster, as a context manager and a test handle.

Usage outside pytest::

    from pytest_raycallbacks.fake_ray import FakeRayCluster

    with FakeRayCluster(gpu_nodes=4) as cluster:
        pg = ray.util.placement_group([{"GPU": 1}] * 8, strategy="STRICT_SPREAD")
        ray.get(pg.ready())
        assert len({r.node_id for r in cluster.tasks}) ...

While the ``with`` block runs, Ray's API in this process is served by the fake (see
:mod:`.patching`); no Ray process is started and no port is opened. On exit (also on an
exception or ``KeyboardInterrupt``) every patched name is restored, running task bodies get
a short grace period, and :attr:`FakeRayCluster.leak_report` tells what was left alive.

Importing this module does not import Ray; starting a cluster does.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FakeRayActivationError
from .faults import Fault, function_path
from .introspection import (
    CallRecord,
    DownloadRecord,
    LeakReport,
    PlacementGroupRecord,
    TaskRecord,
)
from .topology import (
    DEFAULT_ACCELERATOR_TYPE,
    DEFAULT_CPUS_PER_GPU_NODE,
    DEFAULT_GPU_NODES,
    DEFAULT_GPUS_PER_NODE,
    DEFAULT_HEAD_CPUS,
    NodeSpec,
    gpu_node,
    resolve_nodes,
)

if TYPE_CHECKING:
    from .engine import Engine
    from .model import Group, Node, Task

#: What ``fail_download`` matches: the reference runner's per-node download task.
DOWNLOAD_FUNCTION = "reference_runner.node_init._download_on_this_node"
MODEL_CACHE_ENV = "RAYCALLBACKS_MODEL_CACHE"


@dataclass(frozen=True)
class NodeInfo:
    """A snapshot of one node (``resources``/``available`` as Ray reports quantities)."""

    name: str
    node_id: str
    ip: str
    is_head: bool
    alive: bool
    resources: dict[str, float]
    available: dict[str, float]
    gpu_ids_free: tuple[int, ...]
    labels: dict[str, str]


class FakeRayCluster:
    """An in-memory Ray cluster (see the module doc).

    Args:
        nodes: the nodes (``NodeSpec`` or mappings of its fields); the first is the head
            unless one says ``head=True``. Default: a CPU head plus ``gpu_nodes`` GPU nodes.
        gpu_nodes, gpus_per_node, cpus_per_node, head_cpus, accelerator_type: shape of the
            default topology (ignored when ``nodes`` is given).
        seed: makes node, group, task and object ids reproducible.
        autojump: when nothing runs, waits with a timeout end at once (the clock jumps)
            instead of sleeping. Turn off to wait in real time.
        serialize: pickle task arguments, results and ``ray.put`` values as Ray does.
        connected: start with the driver connected (``ray.is_initialized()`` is True), as
            a cluster fixture does; False makes the code under test call ``ray.init()``.
        model_cache_dir: where downloads on the fake nodes go (tasks see it as
            ``$RAYCALLBACKS_MODEL_CACHE``). Default: a temporary folder removed on exit.
            ``False`` leaves the variable alone.
        name: shown in messages and in ``ray.get_runtime_context().gcs_address``.
        keep_routed: after :meth:`stop`, leave Ray's functions routed (calling real Ray
            while no fake cluster is active), so that the next cluster started with
            ``keep_routed=True`` starts without rescanning every module; for callers that
            start many clusters in a row (the conformance kit). End it with
            :func:`~pytest_raycallbacks.fake_ray.patching.release_routing`.
    """

    def __init__(
        self,
        nodes: Iterable[NodeSpec | Mapping[str, Any]] | None = None,
        *,
        gpu_nodes: int = DEFAULT_GPU_NODES,
        gpus_per_node: float = DEFAULT_GPUS_PER_NODE,
        cpus_per_node: float = DEFAULT_CPUS_PER_GPU_NODE,
        head_cpus: float = DEFAULT_HEAD_CPUS,
        accelerator_type: str | None = DEFAULT_ACCELERATOR_TYPE,
        seed: int | str = 0,
        autojump: bool = True,
        serialize: bool = True,
        connected: bool = True,
        model_cache_dir: str | Path | bool | None = None,
        namespace: str | None = None,
        name: str = "fake_ray_cluster",
        keep_routed: bool = False,
    ) -> None:
        self._specs = resolve_nodes(
            nodes,
            gpu_nodes=gpu_nodes,
            gpus_per_node=gpus_per_node,
            cpus_per_node=cpus_per_node,
            head_cpus=head_cpus,
            accelerator_type=accelerator_type,
        )
        self._options: dict[str, Any] = {
            "seed": seed,
            "autojump": autojump,
            "serialize": serialize,
            "namespace": namespace,
            "name": name,
        }
        self._connected = connected
        self._keep_routed = keep_routed
        self._cache_option = model_cache_dir
        self._cache_dir: Path | None = None
        self._own_cache_dir = False
        self._engine: Engine | None = None
        self._active = False
        self.leak_report: LeakReport | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeRayCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeRayCluster:
        """Build the cluster and route Ray's API to it."""
        if self._active:
            raise FakeRayActivationError("this fake Ray cluster is already running")
        from . import patching
        from .engine import Engine

        specs = self._specs
        if self._cache_option is not False:
            if self._cache_option in (None, True):
                self._cache_dir = Path(tempfile.mkdtemp(prefix="fake-ray-models-"))
                self._own_cache_dir = True
            else:
                self._cache_dir = Path(str(self._cache_option))
            cache_env = {MODEL_CACHE_ENV: str(self._cache_dir)}
            specs = [replace(s, env={**cache_env, **s.env}) for s in specs]
        try:
            engine = Engine(specs, **self._options)
            engine.connected = self._connected
            patching.activate(engine, keep_routed=self._keep_routed)
        except BaseException:
            if self._own_cache_dir and self._cache_dir is not None:
                shutil.rmtree(self._cache_dir, ignore_errors=True)
            raise
        self._engine = engine
        self._active = True
        return self

    def stop(self) -> LeakReport:
        """Report leaks, stop the cluster and restore Ray's API (idempotent)."""
        from . import patching

        if not self._active:
            return self.leak_report or LeakReport((), (), ())
        engine = self._engine
        assert engine is not None
        try:
            self.leak_report = self.leaks()
            engine.close()
        finally:
            self._active = False
            patching.deactivate()
            if self._own_cache_dir and self._cache_dir is not None:
                shutil.rmtree(self._cache_dir, ignore_errors=True)
        return self.leak_report

    @property
    def active(self) -> bool:
        return self._active

    @property
    def engine(self) -> Engine:
        """The engine (advanced use: its records are live, change them only via methods)."""
        if self._engine is None:
            raise FakeRayActivationError("the fake Ray cluster has not been started")
        return self._engine

    @property
    def model_cache_dir(self) -> Path | None:
        """Where downloads on the fake nodes go (``<dir>/<node id>/<model>``)."""
        return self._cache_dir

    @property
    def clock_skipped_s(self) -> float:
        """Seconds of waiting the cluster skipped because nothing could change meanwhile."""
        return self.engine.clock.skipped

    # ------------------------------------------------------------------ topology

    def _node_info(self, node: Node) -> NodeInfo:
        from .resources import SCALE, from_units

        with self.engine.lock:
            return NodeInfo(
                name=node.name,
                node_id=node.node_id,
                ip=node.ip,
                is_head=node.is_head,
                alive=node.alive,
                resources=from_units(node.total),
                available=from_units(node.avail),
                gpu_ids_free=tuple(i for i, u in enumerate(node.gpus) if u == SCALE),
                labels=dict(node.labels),
            )

    def node(self, ref: str) -> NodeInfo:
        """A node by name (``"gpu-0"``) or id."""
        return self._node_info(self.engine.node(ref))

    @property
    def nodes(self) -> list[NodeInfo]:
        """Every node that was ever in the cluster, alive or not, in joining order."""
        return [self._node_info(n) for n in self.engine.all_nodes()]

    @property
    def head(self) -> NodeInfo:
        return self._node_info(self.engine.head)

    def node_name(self, node_id: str) -> str:
        return self.engine.node(node_id).name

    def add_node(self, spec: NodeSpec | Mapping[str, Any] | None = None, **fields: Any) -> NodeInfo:
        """Add a worker node and retry pending groups and tasks.

        ``add_node()`` adds a GPU node like the default ones; keyword fields change it
        (``add_node(name="big", num_gpus=2)``, ``add_node(num_gpus=0)`` for a CPU node);
        ``add_node(NodeSpec(...))`` (or a mapping of its fields) adds exactly that node.
        """
        if spec is None:
            new = gpu_node(**fields)
        else:
            if fields:
                raise TypeError("give either a NodeSpec/mapping or keyword fields, not both")
            new = NodeSpec.coerce(spec)
        if self._cache_dir is not None:
            new = replace(new, env={MODEL_CACHE_ENV: str(self._cache_dir), **new.env})
        return self._node_info(self.engine.add_node(new))

    def remove_node(self, node: str) -> NodeInfo:
        """Remove a worker node as ``Cluster.remove_node`` does: its bundles are rescheduled
        elsewhere (or wait, state ``RESCHEDULING``), tasks running there are retried (or
        fail with ``NodeDiedError``), its actors die."""
        return self._node_info(self.engine.remove_node(node, failure=False))

    def fail_node(self, node: str) -> NodeInfo:
        """A node failure: as :meth:`remove_node`, reported as an unexpected death."""
        return self._node_info(self.engine.remove_node(node, failure=True))

    # ------------------------------------------------------------------ faults

    def inject_fault(
        self,
        *,
        function: str | Callable[..., Any] | None = None,
        name: str | None = None,
        node: str | None = None,
        error: BaseException | type[BaseException] | None = None,
        delay_s: float = 0.0,
        times: int | None = None,
    ) -> Fault:
        """Make matching tasks fail and/or run late (see :mod:`.faults`).

        ``function`` is a function or its ``module.qualname`` (globs allowed, and a suffix
        such as ``"_download_on_this_node"`` matches); ``name`` the task name
        (``.options(name=...)``, globs allowed); ``node`` a node name or id.
        """
        fn_name = function_path(function) if callable(function) else function
        if node is not None:
            node = self.engine.node(node).name
        fault = Fault(fn_name, name, node, error, delay_s, times)
        with self.engine.lock:
            self.engine.faults.append(fault)
        return fault

    def fail_task(
        self,
        error: BaseException | type[BaseException] = RuntimeError,
        **match: Any,
    ) -> Fault:
        """Matching tasks raise ``error`` (surfaced by ``ray.get`` as a ``RayTaskError``)."""
        return self.inject_fault(error=error, **match)

    def slow_task(self, delay_s: float, **match: Any) -> Fault:
        """Matching tasks start their body ``delay_s`` seconds (cluster time) late."""
        return self.inject_fault(delay_s=delay_s, **match)

    def fail_download(
        self,
        node: str,
        error: BaseException | type[BaseException] | None = None,
        *,
        times: int | None = None,
    ) -> Fault:
        """The reference model download fails on ``node`` (by default with an ``OSError``
        naming the node)."""
        info = self.engine.node(node)
        if error is None:
            error = OSError(
                f"model download failed on node {info.name} ({info.node_id}): fault injected "
                "by fake_ray_cluster.fail_download"
            )
        return self.inject_fault(function=DOWNLOAD_FUNCTION, node=node, error=error, times=times)

    def clear_faults(self) -> None:
        with self.engine.lock:
            self.engine.faults.clear()

    # ------------------------------------------------------------------ introspection

    def _group_record(self, group: Group) -> PlacementGroupRecord:
        engine = self.engine
        names = []
        for b in group.bundles:
            try:
                names.append(engine.node(b.last_node_id).name if b.last_node_id else "")
            except KeyError:
                names.append("")
        return PlacementGroupRecord(
            id=group.hex,
            name=group.name,
            strategy=group.strategy,
            bundles=tuple(dict(b.spec) for b in group.bundles),
            state=group.state,
            scheduling_state=group.scheduling_state,
            bundle_nodes=tuple(b.last_node_id for b in group.bundles),
            bundle_node_names=tuple(names),
            creator=group.creator,
            created_at=group.created_at,
            removed_at=group.removed_at,
        )

    @property
    def placement_groups(self) -> list[PlacementGroupRecord]:
        """Every placement group created on this cluster, in creation order."""
        with self.engine.lock:
            return [self._group_record(g) for g in self.engine.groups.values()]

    @property
    def removed_placement_groups(self) -> list[PlacementGroupRecord]:
        return [g for g in self.placement_groups if g.state == "REMOVED"]

    @property
    def live_placement_groups(self) -> list[PlacementGroupRecord]:
        """Groups not removed (yet): what would leak if the test ended now."""
        return [g for g in self.placement_groups if g.state != "REMOVED"]

    def placement_group(self, pg: Any) -> PlacementGroupRecord:
        """The record of a ``PlacementGroup`` handle (or its hex id)."""
        hex_id = pg if isinstance(pg, str) else pg.id.hex()
        with self.engine.lock:
            for group in self.engine.groups.values():
                if group.hex == hex_id:
                    return self._group_record(group)
        raise KeyError(f"no placement group {hex_id} in this fake cluster")

    def _task_record(self, task: Task) -> TaskRecord:
        from .resources import from_units

        node = task.ran_on
        error = None if task.error is None else f"{type(task.error).__name__}: {task.error}"
        return TaskRecord(
            id=task.hex,
            kind=task.kind,
            function=task.function_name,
            name=task.name,
            options=dict(task.options),
            resources=from_units(task.demand),
            strategy=task.strategy,
            placement_group=task.group.hex if task.group is not None else None,
            bundle_index=task.bundle_index,
            state=task.state,
            node_id=node.node_id if node is not None else None,
            node_name=node.name if node is not None else None,
            gpu_ids=task.ran_gpu_ids,
            attempts=sum(1 for h in task.history if h.startswith("attempt ") and " on " in h),
            error=error,
            pending_reason=task.pending_reason,
            history=tuple(task.history),
        )

    @property
    def tasks(self) -> list[TaskRecord]:
        """Every task, actor creation and actor call, in submission order."""
        with self.engine.lock:
            return [self._task_record(t) for t in self.engine.tasks.values()]

    def tasks_of(self, function: str | Callable[..., Any]) -> list[TaskRecord]:
        """Tasks of one function (a function, or a suffix of its ``module.qualname``)."""
        name = function_path(function) if callable(function) else function
        return [t for t in self.tasks if t.function == name or t.function.endswith("." + name)]

    @property
    def downloads(self) -> list[DownloadRecord]:
        """Model downloads the reference runner ran on the nodes, in completion order."""
        with self.engine.lock:
            return list(self.engine.downloads)

    def run_ray_node_initialization(self, llm_config: Any, **options: Any) -> Any:
        """Ray's own node initialization for ``llm_config`` (Ray's ``LLMConfig``, or a
        mapping of its fields with a ``callback_config``) on this cluster, by Ray's code
        (Serve's placement group, a replica task in it, Ray's ``get_or_create_callback``,
        ``run_callback``, ``initialize_node`` and its download tasks). Returns the
        :class:`reference_runner.ray_replica.ReplicaStart`: the callback's final ``ctx``,
        what Ray left for the engine, the files on each node of the group. The cluster must
        be active (inside ``with``, or the fixture). Options: those of
        :func:`reference_runner.ray_replica.run_ray_node_initialization`."""
        from reference_runner.ray_replica import run_ray_node_initialization

        if not self.active:
            raise FakeRayActivationError(
                "run_ray_node_initialization needs the fake cluster active: call it inside "
                "'with FakeRayCluster(...)' or from a test using the fake_ray_cluster fixture"
            )
        return run_ray_node_initialization(llm_config, **options)

    def files_by_node(self) -> dict[str, set[str]]:
        """Files downloaded per node name (union over downloads)."""
        out: dict[str, set[str]] = {}
        for d in self.downloads:
            out.setdefault(d.node_name, set()).update(d.files)
        return out

    @property
    def calls(self) -> list[CallRecord]:
        """Every Ray API call the fake served, in call order."""
        with self.engine.lock:
            return sorted(self.engine.calls, key=lambda c: c.seq)

    def calls_to(self, api: str) -> list[CallRecord]:
        """Calls of one API (``"ray.util.placement_group"``, ``"ray.get"`` ...)."""
        return [c for c in self.calls if c.api == api]

    def leaks(self) -> LeakReport:
        """What is alive now: groups not removed, tasks not finished, actors not dead."""
        engine = self.engine
        with engine.lock:
            groups = tuple(
                self._group_record(g) for g in engine.groups.values() if g.state != "REMOVED"
            )
            tasks = tuple(
                self._task_record(t)
                for t in engine.tasks.values()
                if t.state in ("PENDING", "RUNNING") and t.kind != "actor_creation"
            )
            actors = tuple(
                f"{a.class_name}({a.hex})" for a in engine.actors.values() if a.state != "DEAD"
            )
        return LeakReport(groups, tasks, actors)

    def cluster_resources(self) -> dict[str, float]:
        """What ``ray.cluster_resources()`` returns now."""
        return self.engine.cluster_resources()

    def available_resources(self) -> dict[str, float]:
        """What ``ray.available_resources()`` returns now."""
        return self.engine.available_resources()

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return (
            f"<FakeRayCluster {self._options['name']!r} {state}, {len(self._specs)} initial nodes>"
        )
