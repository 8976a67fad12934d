# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes and cloudpickle are untyped.)
"""The fake cluster's engine: nodes, placement groups, tasks, objects and actors in memory.

Contract:

* All state lives in the records of :mod:`.model` and changes only under the engine's lock.
  Every change that could let something waiting proceed runs :meth:`Engine._pump` (place
  pending groups in creation order, then start pending tasks in submission order) and
  wakes the waiters.
* Task bodies run in daemon threads of this process, one thread per run, with the task's
  context (:mod:`.context`): its node id, placement group, GPU ids and environment
  (``CUDA_VISIBLE_DEVICES``, runtime env ``env_vars``, node ``env``). Arguments, results
  and ``ray.put`` values go through cloudpickle as in Ray (``serialize=False`` skips it).
  A task holds its resources (from its node, or from its bundle) while it runs and, as in
  Ray, gives its CPUs back while it blocks in ``ray.get``/``ray.wait``.
* Waits (:meth:`Engine.wait_for`) never hang: if nothing in the cluster is running and
  nothing is scheduled to start, a wait without timeout raises
  :class:`~.errors.FakeRayDeadlockError` naming what is missing, and a wait with a timeout
  jumps the clock to its end (``autojump``) instead of sleeping.
* Errors are Ray's: task exceptions become ``ray.exceptions.RayTaskError`` (raised by
  ``ray.get`` as an instance of both it and the original type), and removed groups, dead
  nodes, cancelled tasks and dead actors give the ``ray.exceptions`` types Ray gives.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import cloudpickle
from ray._common.serialization import pickle_dumps
from ray._raylet import PlacementGroupID
from ray.exceptions import (
    ActorDiedError,
    GetTimeoutError,
    NodeDiedError,
    RayActorError,
    RaySystemError,
    RayTaskError,
    TaskCancelledError,
    TaskPlacementGroupRemoved,
    TaskUnschedulableError,
    WorkerCrashedError,
)
from ray.util.placement_group import PlacementGroup

from . import environ
from .clock import VirtualClock
from .context import CURRENT, TaskContext, current
from .errors import FakeRayActivationError, FakeRayDeadlockError
from .faults import Fault
from .ids import IdFactory, object_id
from .introspection import CallRecord, DownloadRecord
from .model import DRIVER, Actor, Bundle, Group, Node, ObjectEntry, Task
from .placement import full_gpu_capacity, label_match, plan
from .refs import FakeObjectRef
from .resources import (
    GPU,
    SCALE,
    GpuAlloc,
    Units,
    add,
    allocate_gpus,
    fits,
    format_resources,
    from_units,
    gpu_fits,
    gpu_ids,
    release_gpus,
    subtract,
    to_units,
    total_of,
)
from .topology import NodeSpec

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_NO_RESULT = object()


class Engine:
    """One fake cluster's state and scheduler. Use it through :class:`FakeRayCluster`."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        seed: int | str = 0,
        autojump: bool = True,
        serialize: bool = True,
        namespace: str | None = None,
        name: str = "fake",
    ) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.ids = IdFactory(seed)
        self.clock = VirtualClock()
        self.autojump = autojump
        self.serialize = serialize
        self.name = name
        self.address = f"fake-ray://{name}"
        self.namespace = namespace or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.address}/{seed}"))
        self.connected = True
        self.closed = False
        self._nodes: list[Node] = []
        self._by_id: dict[str, Node] = {}
        self._by_name: dict[str, Node] = {}
        self._alive: list[Node] = []
        self.groups: dict[bytes, Group] = {}
        self._group_names: dict[str, Group] = {}
        self.tasks: dict[bytes, Task] = {}
        self.objects: dict[bytes, ObjectEntry] = {}
        self.actors: dict[bytes, Actor] = {}
        self._named_actors: dict[tuple[str, str], Actor] = {}
        self._pending_groups: list[Group] = []
        self._pending_tasks: list[Task] = []
        self._actors_with_work: set[Actor] = set()
        self._running = 0
        self._waiters: list[Callable[[], bool]] = []
        self._delayed: list[tuple[float, int, Task, int]] = []
        self._seq = itertools.count()
        self._call_seq = itertools.count(1)
        self._spread_cursor = 0
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        self.downloads: list[DownloadRecord] = []
        self._pickled_functions: dict[int, Any] = {}
        for spec in specs:
            self._add_node(spec)
        if not any(n.is_head for n in self._nodes):
            raise ValueError("a fake cluster needs a head node")

    # ------------------------------------------------------------------ basics

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def head(self) -> Node:
        return next(n for n in self._nodes if n.is_head)

    def now(self) -> float:
        return self.clock.now()

    def log_call(
        self,
        api: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: BaseException | None,
        seq: int,
    ) -> None:
        ctx = current(self)
        record = CallRecord(
            seq=seq,
            api=api,
            args=args,
            kwargs=kwargs,
            thread=threading.current_thread().name,
            task_id=ctx.task.hex if ctx is not None else None,
            time=self.clock.now(),
            error=None if error is None else f"{type(error).__name__}: {error}",
        )
        with self._lock:
            self.calls.append(record)

    def next_call_seq(self) -> int:
        return next(self._call_seq)

    def check_open(self) -> None:
        if self.closed:
            raise FakeRayActivationError(
                f"the fake Ray cluster {self.name!r} is closed; objects and handles from it "
                "cannot be used any more"
            )

    def require_connected(self, api: str) -> None:
        if not self.connected:
            raise RaySystemError(
                "Ray has not been started yet. You can start Ray with 'ray.init()'."
            )

    def auto_init(self) -> None:
        """What Ray's ``auto_init_ray`` does: reconnect a driver that called shutdown."""
        self.connected = True

    # ------------------------------------------------------------------ nodes

    def _add_node(self, spec: NodeSpec) -> Node:
        index = len(self._nodes)
        node_id = self.ids.node_id(index)
        ip = f"10.{(index // 62500) % 256}.{(index // 250) % 250}.{index % 250 + 1}"
        name = spec.name or ("head" if spec.head else f"node-{index}")
        if name in self._by_name:
            raise ValueError(f"a node named {name!r} already exists in this fake cluster")
        totals: dict[str, float] = {
            "CPU": spec.num_cpus,
            "memory": spec.memory,
            "object_store_memory": spec.object_store_memory,
            f"node:{ip}": 1.0,
        }
        if spec.num_gpus:
            totals[GPU] = spec.num_gpus
        if spec.head:
            totals["node:__internal_head__"] = 1.0
        if spec.accelerator_type:
            totals[f"accelerator_type:{spec.accelerator_type}"] = 1.0
        totals.update(spec.resources)
        total = to_units(totals)
        labels = {"ray.io/node-id": node_id}
        if spec.accelerator_type:
            labels["ray.io/accelerator-type"] = spec.accelerator_type
        labels.update(spec.labels)
        capacity = full_gpu_capacity(spec.num_gpus)
        node = Node(
            index=index,
            node_id=node_id,
            name=name,
            ip=ip,
            is_head=spec.head,
            total=total,
            avail=dict(total),
            gpus=list(capacity),
            gpu_capacity=capacity,
            labels=labels,
            env=dict(spec.env),
            added_at=self.clock.now(),
        )
        self._nodes.append(node)
        self._by_id[node_id] = node
        self._by_name[name] = node
        self._alive.append(node)
        return node

    def add_node(self, spec: NodeSpec) -> Node:
        with self._lock:
            self.check_open()
            if spec.head:
                raise ValueError("a fake cluster has exactly one head node; add_node adds workers")
            node = self._add_node(spec)
            self._pump()
            return node

    def node(self, ref: str | Node) -> Node:
        """A node by name, id, or the node itself."""
        with self._lock:
            if isinstance(ref, Node):
                return ref
            node = self._by_name.get(ref) or self._by_id.get(ref)
            if node is None:
                raise KeyError(
                    f"no node {ref!r} in this fake cluster; nodes: {[n.name for n in self._nodes]}"
                )
            return node

    def all_nodes(self) -> list[Node]:
        with self._lock:
            return list(self._nodes)

    def alive_nodes(self) -> list[Node]:
        with self._lock:
            return list(self._alive)

    def remove_node(self, ref: str | Node, *, failure: bool) -> Node:
        """Take a node out: its bundles are rescheduled (or wait), its tasks fail or are
        retried elsewhere, its actors die."""
        with self._lock:
            self.check_open()
            node = self.node(ref)
            if node.is_head:
                raise ValueError(
                    "the head node cannot be removed: the driver runs there (remove a worker "
                    "node, or build the cluster with another head)"
                )
            if not node.alive:
                raise ValueError(f"node {node.name!r} is already dead")
            node.alive = False
            node.removed_at = self.clock.now()
            node.death_reason = 1 if failure else 2
            node.death_message = (
                "node failure injected by fake_ray_cluster"
                if failure
                else "removed by fake_ray_cluster.remove_node"
            )
            self._alive = [n for n in self._alive if n is not node]
            died = NodeDiedError(
                f"The node {node.node_id} ({node.ip}) where this task was running died: "
                f"{node.death_message}."
            )
            for group in self.groups.values():
                if group.state in ("CREATED", "RESCHEDULING") and any(
                    b.node is node for b in group.bundles
                ):
                    for bundle in group.bundles:
                        if bundle.node is node:
                            bundle.node = None
                            bundle.gpu_alloc = []
                            bundle.avail = {}
                            bundle.gpus = {}
                    group.state = "RESCHEDULING"
                    group.scheduling_state = "RESCHEDULING"
                    if group not in self._pending_groups:
                        self._pending_groups.insert(0, group)
            for task in list(self.tasks.values()):
                if task.state == "RUNNING" and task.node is node:
                    if task.kind == "actor_method":
                        continue  # failed with its actor below
                    self._abort_attempt(task, died, retry=task.kind == "task")
            for actor in list(self.actors.values()):
                if actor.state != "DEAD" and actor.creation.node is node:
                    self._kill_actor(actor, f"The actor died because its node {node.node_id} died.")
            self._pump()
            return node

    # ------------------------------------------------------------------ resources view

    def cluster_resources(self) -> dict[str, float]:
        with self._lock:
            total: Units = {}
            for node in self._alive:
                add(total, node.total)
            self._add_group_resources(total, available=False)
            return from_units(total)

    def available_resources(self) -> dict[str, float]:
        with self._lock:
            avail: Units = {}
            for node in self._alive:
                add(avail, node.avail)
            self._add_group_resources(avail, available=True)
            return {k: v for k, v in from_units(avail).items() if v > 0}

    def _add_group_resources(self, out: Units, *, available: bool) -> None:
        for group in self.groups.values():
            if group.state not in ("CREATED", "RESCHEDULING"):
                continue
            h = group.hex
            for bundle in group.bundles:
                if bundle.node is None:
                    continue
                amounts = bundle.avail if available else bundle.demand
                for k in bundle.demand:
                    v = amounts.get(k, 0)
                    out[f"{k}_group_{bundle.index}_{h}"] = v
                    out[f"{k}_group_{h}"] = out.get(f"{k}_group_{h}", 0) + v
                out[f"bundle_group_{bundle.index}_{h}"] = 1000 * SCALE
                out[f"bundle_group_{h}"] = out.get(f"bundle_group_{h}", 0) + 1000 * SCALE

    def nodes_info(self) -> list[dict[str, Any]]:
        """``ray.nodes()``: one dict per node ever in the cluster, as Ray shapes it."""
        with self._lock:
            return [
                {
                    "NodeID": n.node_id,
                    "Alive": n.alive,
                    "NodeManagerAddress": n.ip,
                    "NodeManagerHostname": f"fake-{n.name}",
                    "NodeManagerPort": 0,
                    "ObjectManagerPort": 0,
                    "ObjectStoreSocketName": "",
                    "RayletSocketName": "",
                    "MetricsExportPort": 0,
                    "MetricsAgentPort": 0,
                    "DashboardAgentListenPort": 0,
                    "NodeName": n.ip,
                    "RuntimeEnvAgentPort": 0,
                    "DeathReason": n.death_reason,
                    "DeathReasonMessage": n.death_message,
                    "alive": n.alive,
                    "Resources": from_units(n.total) if n.alive else {},
                    "Labels": dict(n.labels),
                }
                for n in self._nodes
            ]

    # ------------------------------------------------------------------ placement groups

    def create_group(
        self,
        bundles: list[dict[str, float]],
        strategy: str,
        name: str,
        lifetime: str | None,
        soft_target_node_id: str | None,
        selectors: list[dict[str, str]] | None,
    ) -> Group:
        with self._lock:
            self.check_open()
            gid = self.ids.placement_group_id()
            if name and name in self._group_names:
                raise RaySystemError(
                    f"Failed to create placement group '{gid.hex()}' because name '{name}' "
                    "already exists."
                )
            ctx = current(self)
            group = Group(
                id=gid,
                hex=gid.hex(),
                name=name,
                strategy=strategy,
                bundles=[
                    Bundle(
                        index=i,
                        demand=to_units(b),
                        spec={k: float(v) for k, v in b.items()},
                        selector=(selectors[i] or None) if selectors else None,
                    )
                    for i, b in enumerate(bundles)
                ],
                lifetime=lifetime,
                soft_target_node_id=soft_target_node_id,
                creator=ctx.task.hex if ctx is not None else DRIVER,
                created_at=self.clock.now(),
            )
            self.groups[gid] = group
            if name:
                self._group_names[name] = group
            self._pending_groups.append(group)
            self._pump()
            return group

    def group(self, group_id: bytes) -> Group | None:
        return self.groups.get(group_id)

    def group_by_name(self, name: str) -> Group | None:
        with self._lock:
            return self._group_names.get(name)

    def _try_place_group(self, group: Group) -> bool:
        todo = [b for b in group.bundles if b.node is None]
        nodes: Sequence[Node] = self._alive
        if group.strategy == "STRICT_SPREAD" and len(todo) < len(group.bundles):
            taken = {b.node.index for b in group.bundles if b.node is not None}
            nodes = [n for n in nodes if n.index not in taken]
        elif group.strategy == "STRICT_PACK" and len(todo) < len(group.bundles):
            kept = {b.node.index for b in group.bundles if b.node is not None}
            nodes = [n for n in nodes if n.index in kept]
        group.scheduling_attempts += 1
        placed = plan(todo, group.strategy, nodes, soft_target_node_id=group.soft_target_node_id)
        if placed is None:
            feasible = plan(group.bundles, group.strategy, self._alive, use_totals=True)
            group.scheduling_state = "NO_RESOURCES" if feasible is not None else "INFEASIBLE"
            return False
        allocs = _gpu_allocations(todo, placed)
        for i, bundle in enumerate(todo):
            node = placed[i]
            subtract(node.avail, bundle.demand)
            alloc = allocs[i]
            bundle.node = node
            bundle.last_node_id = node.node_id
            bundle.gpu_alloc = alloc
            bundle.avail = dict(bundle.demand)
            bundle.gpus = dict(alloc)
        group.state = "CREATED"
        group.scheduling_state = "FINISHED"
        group.placed_at = self.clock.now()
        group.ever_created = True
        self._pending_groups.remove(group)
        for oid in group.ready_objects:
            entry = self.objects[oid]
            if not entry.ready:
                self._resolve(entry, self._group_handle(group))
        group.ready_objects.clear()
        return True

    def _group_handle(self, group: Group) -> PlacementGroup:
        return PlacementGroup(PlacementGroupID(group.id), bundle_cache=group.bundle_specs)

    def remove_group(self, group: Group) -> None:
        with self._lock:
            self.check_open()
            if group.state == "REMOVED":
                return
            for bundle in group.bundles:
                node = bundle.node
                if node is not None and node.alive:
                    add(node.avail, bundle.demand)
                    release_gpus(node.gpus, bundle.gpu_alloc)
                bundle.node = None
                bundle.gpu_alloc = []
                bundle.avail = {}
                bundle.gpus = {}
            if group in self._pending_groups:
                self._pending_groups.remove(group)
            group.state = "REMOVED"
            group.scheduling_state = "REMOVED"
            group.removed_at = self.clock.now()
            if group.name and self._group_names.get(group.name) is group:
                del self._group_names[group.name]
            for oid in group.ready_objects:
                entry = self.objects[oid]
                if not entry.ready:
                    self._fail_object(entry, TaskPlacementGroupRemoved())
            group.ready_objects.clear()
            for task in list(self.tasks.values()):
                if task.group is group and task.state == "RUNNING" and task.kind == "task":
                    # Ray kills the worker and retries the task, which then waits forever
                    # for a group that no longer exists.
                    self._abort_attempt(task, None, retry=True, release=False)
            for actor in list(self.actors.values()):
                if actor.state != "DEAD" and actor.creation.group is group:
                    self._kill_actor(
                        actor, "The actor died because its placement group was removed."
                    )
            self._pump()

    def group_ready_ref(self, group: Group) -> FakeObjectRef:
        with self._lock:
            oid = object_id(self.ids.put_task_id(), 1)
            entry = ObjectEntry(object_id=oid, kind="pg_ready", group=group)
            self.objects[oid] = entry
            if group.state == "CREATED" or (group.ever_created and group.state == "RESCHEDULING"):
                self._resolve(entry, self._group_handle(group))
            elif group.state == "REMOVED":
                self._fail_object(entry, TaskPlacementGroupRemoved())
            else:
                group.ready_objects.append(oid)
            return FakeObjectRef.of(oid)

    def wait_group(self, group: Group, timeout: float | None) -> bool:
        """``pg.wait(timeout)``: True once created; raises if the group was removed."""

        def gone() -> Exception:
            return Exception(f"Placement group {PlacementGroupID(group.id)!r} does not exist.")

        with self._lock:
            if group.state == "REMOVED":
                raise gone()
            ok = self.wait_for(
                lambda: group.state in ("CREATED", "REMOVED"),
                timeout,
                lambda: self._describe_group(group),
            )
            if _is_removed(group):  # it may have been removed while we waited
                raise gone()
            return ok and group.state == "CREATED"

    def group_table(self, group: Group) -> dict[str, Any]:
        with self._lock:
            pending = group.state == "PENDING"
            created = group.placed_at is not None
            latency = 0.0 if not created else round((group.placed_at or 0) - group.created_at, 6)
            return {
                "placement_group_id": group.hex,
                "name": group.name,
                "bundles": {b.index: dict(b.spec) for b in group.bundles},
                "bundles_to_node_id": {
                    b.index: ("" if pending and not created else b.last_node_id)
                    for b in group.bundles
                },
                "strategy": group.strategy,
                "state": group.state,
                "stats": {
                    "end_to_end_creation_latency_ms": latency * 1000.0,
                    "scheduling_latency_ms": latency * 1000.0,
                    "scheduling_attempt": max(group.scheduling_attempts, 1),
                    "highest_retry_delay_ms": 0.0,
                    "scheduling_state": group.scheduling_state,
                },
            }

    def all_group_tables(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {g.hex: self.group_table(g) for g in self.groups.values()}

    # ------------------------------------------------------------------ objects

    def _dumps(self, value: Any, what: str) -> bytes:
        data: bytes = pickle_dumps(value, what)
        return data

    def _resolve(self, entry: ObjectEntry, value: Any, blob: bytes | None = None) -> None:
        entry.ready = True
        if self.serialize:
            entry.blob = blob if blob is not None else cloudpickle.dumps(value)
        else:
            entry.value = value
        self._cond.notify_all()

    def _fail_object(self, entry: ObjectEntry, error: BaseException) -> None:
        entry.ready = True
        entry.error = error
        self._cond.notify_all()

    def _value_of(self, entry: ObjectEntry) -> Any:
        if entry.blob is not None:
            return cloudpickle.loads(entry.blob)
        return entry.value

    def put(self, value: Any) -> FakeObjectRef:
        if isinstance(value, ray.ObjectRef):
            raise TypeError(
                "Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do "
                "this, you can wrap the ray.ObjectRef in a list and call 'put' on it."
            )
        blob = (
            self._dumps(value, f"Could not serialize the put value {value!r}")
            if self.serialize
            else None
        )
        with self._lock:
            self.check_open()
            oid = object_id(self.ids.put_task_id(), 1)
            entry = ObjectEntry(object_id=oid, kind="put")
            self.objects[oid] = entry
            self._resolve(entry, value, blob)
            return FakeObjectRef.of(oid)

    def entry_of(self, ref: Any) -> ObjectEntry:
        entry = self.objects.get(ref.binary()) if isinstance(ref, FakeObjectRef) else None
        if entry is None:
            raise ValueError(
                f"{ref!r} is not an object of this fake Ray cluster: it was made by real Ray "
                "(or by another fake cluster). Objects cannot cross between a real cluster "
                "and the fake one; create it while the fake cluster is active."
            )
        return entry

    def get(self, refs: Sequence[Any], timeout: float | None) -> list[Any]:
        with self._lock:
            entries = [self.entry_of(r) for r in refs]
            ok = self.wait_for(
                lambda: all(e.ready for e in entries),
                timeout,
                lambda: self._describe_objects(entries),
            )
            if not ok:
                raise GetTimeoutError("Get timed out: some object(s) not ready.")
            values = []
            for entry in entries:
                if entry.error is not None:
                    error = entry.error
                    if isinstance(error, RayTaskError):
                        raise error.as_instanceof_cause()
                    raise error
                values.append(self._value_of(entry))
            return values

    def wait(
        self, refs: Sequence[Any], num_returns: int, timeout: float | None
    ) -> tuple[list[Any], list[Any]]:
        with self._lock:
            entries = [self.entry_of(r) for r in refs]
            self.wait_for(
                lambda: sum(e.ready for e in entries) >= num_returns,
                timeout,
                lambda: self._describe_objects([e for e in entries if not e.ready]),
            )
            ready: list[Any] = []
            not_ready: list[Any] = []
            for ref, entry in zip(refs, entries, strict=True):
                (ready if entry.ready and len(ready) < num_returns else not_ready).append(ref)
            return ready, not_ready

    # ------------------------------------------------------------------ waiting

    def wait_for(
        self, ready: Callable[[], bool], timeout: float | None, describe: Callable[[], str]
    ) -> bool:
        """Block until ``ready()`` (True), the timeout (False), or a deadlock (raises).

        See the module doc for how the clock jumps when nothing runs.
        """
        with self._lock:
            self._pump()
            if ready():
                return True
            if timeout is not None and timeout <= 0:
                return False
            deadline = None if timeout is None else self.clock.now() + timeout
            ctx = current(self)
            self._block(ctx)
            self._waiters.append(ready)
            try:
                while True:
                    self._pump()
                    if ready():
                        return True
                    now = self.clock.now()
                    if deadline is not None and now >= deadline:
                        return False
                    due = self._delayed[0][0] if self._delayed else None
                    wake: float | None
                    if self._running <= 0 and not self._someone_can_proceed(ready):
                        if due is not None and (deadline is None or due <= deadline):
                            if self.autojump:
                                self.clock.jump_to(due)
                                continue
                            wake = due
                        elif deadline is None:
                            raise FakeRayDeadlockError(
                                "ray would block forever here: nothing in the fake cluster is "
                                "running or scheduled that could make this wait succeed. "
                                + describe()
                            )
                        else:
                            if self.autojump:
                                self.clock.jump_to(deadline)
                                return False
                            wake = deadline
                    else:
                        wake = min((x for x in (deadline, due) if x is not None), default=None)
                    self._cond.wait(None if wake is None else max(0.0, wake - now) + 0.001)
            finally:
                self._waiters.remove(ready)
                self._unblock(ctx)

    def _someone_can_proceed(self, me: Callable[[], bool]) -> bool:
        """Is another waiter's condition met (it will run as soon as it gets the lock)?"""
        return any(w is not me and w() for w in self._waiters)

    def _block(self, ctx: TaskContext | None) -> None:
        if ctx is None:
            return
        ctx.blocked += 1
        if ctx.blocked != 1:
            return
        self._running -= 1
        task = ctx.task
        cpu = task.demand.get("CPU", 0)
        if cpu > 0 and task.state == "RUNNING" and task.kind == "task" and task.node is not None:
            self._pool_of(task)[0]["CPU"] = self._pool_of(task)[0].get("CPU", 0) + cpu
            task.released_cpu = cpu
        self._cond.notify_all()

    def _unblock(self, ctx: TaskContext | None) -> None:
        if ctx is None:
            return
        ctx.blocked -= 1
        if ctx.blocked != 0:
            return
        self._running += 1
        task = ctx.task
        if task.released_cpu and task.state == "RUNNING" and task.node is not None:
            pool = self._pool_of(task)[0]
            pool["CPU"] = pool.get("CPU", 0) - task.released_cpu
        task.released_cpu = 0

    def _pool_of(self, task: Task) -> tuple[Units, Any]:
        if task.bundle is not None:
            return task.bundle.avail, task.bundle.gpus
        assert task.node is not None
        return task.node.avail, task.node.gpus

    # ------------------------------------------------------------------ tasks

    def check_function_serializable(self, fn: Callable[..., Any], descriptor_repr: str) -> None:
        """Ray pickles a remote function when first used; so does the fake."""
        if not self.serialize or id(fn) in self._pickled_functions:
            return
        pickle_dumps(fn, f"Could not serialize the function {descriptor_repr}")
        self._pickled_functions[id(fn)] = fn

    def submit(
        self,
        *,
        kind: str,
        function: Callable[..., Any],
        function_name: str,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: dict[str, Any],
        resources: Mapping[str, float],
        strategy: str,
        num_returns: int,
        group: Group | None = None,
        bundle_index: int = -1,
        capture_child_tasks: bool = False,
        affinity_node_id: str | None = None,
        affinity_soft: bool = False,
        label_selector: dict[str, str] | None = None,
        runtime_env: dict[str, Any] | None = None,
        max_retries: int = 0,
        retry_exceptions: bool | tuple[type[BaseException], ...] = False,
        placement_resources: Mapping[str, float] | None = None,
        actor: Actor | None = None,
    ) -> Task:
        """Record a task and queue it; returns the task (its ``return_ids`` are the refs)."""
        deps = [
            self.entry_of(a).object_id
            for a in itertools.chain(args, kwargs.values())
            if isinstance(a, ray.ObjectRef)
        ]
        if self.serialize:
            what = f"Could not serialize the arguments of a call to {function_name}"
            blob = self._dumps((tuple(args), dict(kwargs)), what)
            stored_args: tuple[Any, ...] = (blob,)
            stored_kwargs: dict[str, Any] = {}
        else:
            stored_args, stored_kwargs = tuple(args), dict(kwargs)
        with self._lock:
            self.check_open()
            ctx = current(self)
            task_id = self.ids.task_id()
            demand = to_units(resources)
            task = Task(
                task_id=task_id,
                kind=kind,  # type: ignore[arg-type]
                function=function,
                function_name=function_name,
                name=name,
                args=stored_args,
                kwargs=stored_kwargs,
                options=options,
                demand=demand,
                strategy=strategy,
                return_ids=[object_id(task_id, i + 1) for i in range(num_returns)],
                num_returns=num_returns,
                max_retries=max_retries,
                retry_exceptions=retry_exceptions,
                group=group,
                bundle_index=bundle_index,
                capture_child_tasks=capture_child_tasks,
                affinity_node_id=affinity_node_id,
                affinity_soft=affinity_soft,
                label_selector=label_selector,
                runtime_env=runtime_env,
                deps=deps,
                parent=ctx.task if ctx is not None else None,
                actor=actor,
                submitted_at=self.clock.now(),
            )
            task.placement_demand = (
                to_units(placement_resources) if placement_resources is not None else None
            )
            self.tasks[task_id] = task
            for oid in task.return_ids:
                self.objects[oid] = ObjectEntry(object_id=oid, kind="task", task=task)
            if kind == "actor_method":
                assert actor is not None
                actor.queue.append(task)
                self._actors_with_work.add(actor)
            else:
                self._pending_tasks.append(task)
            self._pump()
            return task

    def _deps_state(self, task: Task) -> BaseException | bool:
        """True when every argument ref is ready, the first failure if one failed."""
        for oid in task.deps:
            entry = self.objects[oid]
            if not entry.ready:
                return False
            if entry.error is not None:
                return entry.error
        return True

    def _try_start(self, task: Task) -> bool:
        if task.state != "PENDING":
            if task in self._pending_tasks:
                self._pending_tasks.remove(task)
            return False
        deps = self._deps_state(task)
        if deps is not True:
            if deps is False:
                task.pending_reason = "waiting for its argument objects"
                return False
            self._finish_failed(task, deps)  # type: ignore[arg-type]
            return False
        choice = self._choose(task)
        if choice is None:
            return False
        node, bundle = choice
        self._allocate(task, node, bundle)
        return True

    def _choose(self, task: Task) -> tuple[Node, Bundle | None] | None:
        demand = task.demand
        placement_demand: Units = task.placement_demand or demand
        group = task.group
        if group is not None:
            if group.state == "REMOVED":
                task.pending_reason = (
                    f"its placement group {group.hex} was removed; Ray leaves such a task "
                    "pending forever"
                )
                return None
            if group.state != "CREATED":
                task.pending_reason = (
                    f"waiting for its placement group {group.hex} to be placed "
                    f"(state {group.state}, {group.scheduling_state})"
                )
                return None
            candidates = (
                group.bundles if task.bundle_index < 0 else [group.bundles[task.bundle_index]]
            )
            for bundle in candidates:
                if bundle.node is not None and self._bundle_fits(bundle, placement_demand):
                    return bundle.node, bundle
            holdable = any(fits(b.demand, demand) and _gpu_cap_fits(b, demand) for b in candidates)
            where = (
                f"bundle {task.bundle_index} of placement group {group.hex}"
                if task.bundle_index >= 0
                else f"any bundle of placement group {group.hex}"
            )
            task.pending_reason = (
                f"{where} is busy (it waits for running tasks to finish)"
                if holdable
                else f"{where} can never hold it: the bundle(s) reserve "
                f"{[b.spec for b in candidates]}; Ray leaves such a task pending forever"
            )
            return None
        if task.affinity_node_id is not None:
            node = self._by_id.get(task.affinity_node_id)
            feasible = node is not None and node.alive and _node_can_hold(node, placement_demand)
            if feasible:
                assert node is not None
                if _node_fits(node, placement_demand):
                    return node, None
                task.pending_reason = f"waiting for resources on node {node.name} ({node.node_id})"
                return None
            if not task.affinity_soft:
                self._finish_failed(
                    task,
                    TaskUnschedulableError(
                        "The node specified via NodeAffinitySchedulingStrategy doesn't exist "
                        "any more or is infeasible, and soft=False was specified. "
                        f"lease_id={task.hex[:16]}{'f' * 48}, name={task.name}"
                    ),
                )
                return None
        candidates_nodes = [n for n in self._alive if label_match(n.labels, task.label_selector)]
        preferred = task.parent.node if task.parent is not None and task.parent.node else self.head
        if task.strategy == "SPREAD" and candidates_nodes:
            start = self._spread_cursor % len(candidates_nodes)
            ordered = candidates_nodes[start:] + candidates_nodes[:start]
        else:
            ordered = ([preferred] if preferred in candidates_nodes else []) + [
                n for n in candidates_nodes if n is not preferred
            ]
        for node in ordered:
            if _node_fits(node, placement_demand):
                if task.strategy == "SPREAD":
                    self._spread_cursor += 1
                return node, None
        if any(_node_can_hold(n, placement_demand) for n in candidates_nodes):
            task.pending_reason = "waiting for resources (every node that could run it is busy)"
        else:
            task.pending_reason = (
                f"infeasible: no alive node can ever hold {format_resources(placement_demand)}"
                + (f" with labels {task.label_selector}" if task.label_selector else "")
                + "; Ray leaves such a task pending (and warns) until such a node joins"
            )
        return None

    def _bundle_fits(self, bundle: Bundle, demand: Mapping[str, int]) -> bool:
        if not fits(bundle.avail, demand):
            return False
        need = demand.get(GPU, 0)
        if need <= 0:
            return True
        devices = sorted(bundle.gpus)
        return gpu_fits([bundle.gpus[d] for d in devices], need)

    def _allocate(self, task: Task, node: Node, bundle: Bundle | None) -> None:
        need_gpu = task.demand.get(GPU, 0)
        alloc: GpuAlloc
        if bundle is not None:
            subtract(bundle.avail, task.demand)
            devices = sorted(bundle.gpus)
            free = [bundle.gpus[d] for d in devices]
            local = allocate_gpus(free, need_gpu) or []
            alloc = [(devices[i], u) for i, u in local]
            for d, u in alloc:
                bundle.gpus[d] -= u
        else:
            subtract(node.avail, task.demand)
            alloc = allocate_gpus(node.gpus, need_gpu) or []
        task.node = node
        task.ran_on = node
        task.bundle = bundle
        task.gpu_alloc = alloc
        task.ran_gpu_ids = tuple(gpu_ids(alloc))
        task.state = "RUNNING"
        task.attempt += 1
        task.started_at = self.clock.now()
        task.pending_reason = ""
        if task in self._pending_tasks:
            self._pending_tasks.remove(task)
        task.history.append(f"attempt {task.attempt} on {node.name}")
        fault = next((f for f in self.faults if f.matches(task, node)), None)
        delay = 0.0
        task.fault_error = None
        if fault is not None:
            fault.fired += 1
            fault.hits.append(task.hex)
            task.fault_error = fault.make_error()
            delay = fault.delay_s
            task.history.append(f"fault injected: {fault.describe()}")
        if delay > 0:
            task.body_starts_at = self.clock.now() + delay
            heapq.heappush(
                self._delayed, (task.body_starts_at, next(self._seq), task, task.attempt)
            )
        else:
            self._launch(task, task.attempt)

    def _release(self, task: Task) -> None:
        node = task.node
        if node is None:
            return
        if task.kind == "actor_method":  # runs on its actor's resources
            task.node = None
            return
        demand = dict(task.demand)
        if task.released_cpu:
            demand["CPU"] = demand.get("CPU", 0) - task.released_cpu
            task.released_cpu = 0
        if task.bundle is not None:
            bundle = task.bundle
            if bundle.node is node:
                add(bundle.avail, demand)
                for d, u in task.gpu_alloc:
                    if d in bundle.gpus:
                        bundle.gpus[d] += u
        elif node.alive:
            add(node.avail, demand)
            release_gpus(node.gpus, task.gpu_alloc)
        task.node = None
        task.bundle = None

    def _advance_due(self) -> None:
        now = self.clock.now()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, task, attempt = heapq.heappop(self._delayed)
            if task.state == "RUNNING" and task.attempt == attempt:
                self._launch(task, attempt)

    def _launch(self, task: Task, attempt: int) -> None:
        self._running += 1
        thread = threading.Thread(
            target=self._run_in_context,
            args=(task, attempt),
            name=f"fake-ray-{task.kind}-{task.name}",
            daemon=True,
        )
        thread.start()

    def _run_in_context(self, task: Task, attempt: int) -> None:
        contextvars.Context().run(self._run, task, attempt)

    def _task_env(self, task: Task, node: Node) -> dict[str, str]:
        env = dict(node.env)
        renv = task.runtime_env or {}
        env.update({str(k): str(v) for k, v in (renv.get("env_vars") or {}).items()})
        ids = gpu_ids(task.gpu_alloc)
        if ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
        return env

    def _run(self, task: Task, attempt: int) -> None:
        node = task.node
        try:
            assert node is not None
            CURRENT.set(TaskContext(self, task, node, task.actor))
            environ.OVERLAY.set(environ.encode(self._task_env(task, node)))
            outcome = self._call_body(task, node)
        except BaseException as exc:  # pragma: no cover - _call_body catches everything
            outcome = ("error", exc, _NO_RESULT)
        with self._lock:
            self._running -= 1
            self._complete(task, attempt, outcome)
            self._pump()

    def _call_body(self, task: Task, node: Node) -> tuple[str, Any, Any]:
        try:
            if self.serialize:
                args, kwargs = cloudpickle.loads(task.args[0])
            else:
                args, kwargs = task.args, task.kwargs
            args = tuple(self._arg_value(a) for a in args)
            kwargs = {k: self._arg_value(v) for k, v in kwargs.items()}
            if task.fault_error is not None:
                raise task.fault_error
            result = self._invoke(task, args, kwargs)
        except BaseException as exc:
            return ("error", self._task_error(task, node, exc), _NO_RESULT)
        try:
            values = self._split_returns(task, result)
            blobs = (
                [cloudpickle.dumps(v) for v in values] if self.serialize else [None] * len(values)
            )
        except BaseException as exc:
            return ("error", self._task_error(task, node, exc), _NO_RESULT)
        return ("ok", (values, blobs), result)

    def _invoke(self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import asyncio
        import inspect

        fn = task.function
        if task.kind == "actor_method":
            assert task.actor is not None
            method = task.options["method"]
            if method == "__ray_ready__":
                return True
            fn = getattr(task.actor.instance, method)
        elif task.kind == "actor_creation":
            assert task.actor is not None
            instance = task.actor.cls(*args, **kwargs)
            return instance
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result

    def _arg_value(self, value: Any) -> Any:
        if isinstance(value, FakeObjectRef):
            entry = self.objects[value.binary()]
            return self._value_of(entry)
        return value

    def _split_returns(self, task: Task, result: Any) -> list[Any]:
        if task.kind == "actor_creation":
            return [None]
        if task.num_returns == 1:
            return [result]
        if task.num_returns == 0:
            return []
        values = list(result)
        if len(values) != task.num_returns:
            raise ValueError(
                f"Task returned {len(values)} objects, but num_returns={task.num_returns}."
            )
        return values

    def _task_error(self, task: Task, node: Node, exc: BaseException) -> BaseException:
        if not isinstance(exc, Exception):
            return WorkerCrashedError()
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        if not text.startswith("Traceback"):
            text = "Traceback (most recent call last):\n" + text
        name = task.name
        if task.kind == "actor_method" and task.actor is not None:
            name = f"{task.actor.class_name}.{task.options['method']}"
        return RayTaskError(
            function_name=task.function_name,
            traceback_str=text,
            cause=exc,
            proctitle=f"ray::{name}",
            pid=os.getpid(),
            ip=node.ip,
            actor_repr=None,
            actor_id=task.actor.hex if task.actor is not None else None,
        )

    def _complete(self, task: Task, attempt: int, outcome: tuple[str, Any, Any]) -> None:
        if task.attempt != attempt or task.state != "RUNNING":
            task.history.append(f"attempt {attempt} finished after it was abandoned; ignored")
            return
        status, payload, raw = outcome
        if task.kind == "actor_method" and task.actor is not None:
            task.actor.worker_busy = False
            self._actors_with_work.add(task.actor)
        if status == "error":
            error = payload
            if task.kind == "task" and self._should_retry(task, error):
                self._release(task)
                task.state = "PENDING"
                task.history.append(f"attempt {attempt} failed ({_short(error)}); retrying")
                self._pending_tasks.append(task)
                return
            if task.kind != "actor_creation" or task.actor is None:
                self._release(task)
            self._finish_failed(task, error)
            if task.kind == "actor_creation" and task.actor is not None:
                self._release(task)
                actor = task.actor
                actor.state = "DEAD"
                actor.death_message = (
                    "The actor died because of an error raised in its creation task"
                )
                self._fail_actor_queue(
                    actor, ActorDiedError(error) if isinstance(error, RayTaskError) else error
                )
            return
        values, blobs = payload
        if task.kind == "actor_creation" and task.actor is not None:
            actor = task.actor
            actor.instance = raw
            actor.state = "ALIVE"
            self._actors_with_work.add(actor)
        else:
            self._release(task)
        task.state = "FINISHED"
        task.finished_at = self.clock.now()
        for oid, value, blob in zip(task.return_ids, values, blobs, strict=True):
            self._resolve(self.objects[oid], value, blob)
        self._record_download(task, raw)

    def _should_retry(self, task: Task, error: BaseException) -> bool:
        if not isinstance(error, RayTaskError):
            return False
        allowed = task.retry_exceptions
        if allowed is False:
            return False
        if isinstance(allowed, tuple) and not isinstance(error.cause, allowed):
            return False
        task.failures += 1
        return task.max_retries < 0 or task.failures <= task.max_retries

    def _finish_failed(self, task: Task, error: BaseException) -> None:
        if task in self._pending_tasks:
            self._pending_tasks.remove(task)
        task.state = "FAILED"
        task.error = error
        task.finished_at = self.clock.now()
        for oid in task.return_ids:
            self._fail_object(self.objects[oid], error)

    def _abort_attempt(
        self, task: Task, error: BaseException | None, *, retry: bool, release: bool = True
    ) -> None:
        """Abandon a running attempt (its thread's result will be ignored)."""
        if release:
            self._release(task)
        else:
            task.node = None
            task.bundle = None
            task.released_cpu = 0
        task.attempt += 1  # the running thread's attempt is now stale
        if error is not None:
            task.failures += 1
        if retry and (error is None or task.max_retries < 0 or task.failures <= task.max_retries):
            task.state = "PENDING"
            task.history.append(
                f"attempt aborted ({_short(error) if error else 'killed'}); retrying"
            )
            self._pending_tasks.append(task)
        else:
            self._finish_failed(task, error or WorkerCrashedError())

    def _record_download(self, task: Task, result: Any) -> None:
        cls = type(result)
        if cls.__name__ != "NodeDownload" or not cls.__module__.startswith("reference_runner"):
            return
        node = task.ran_on
        self.downloads.append(
            DownloadRecord(
                node_id=node.node_id if node else getattr(result, "node_id", ""),
                node_name=node.name if node else "?",
                task_id=task.hex,
                downloadable=getattr(getattr(result, "downloadable", None), "name", "?"),
                path=str(getattr(result, "path", "")),
                files=tuple(getattr(result, "files", ())),
                copied=tuple(getattr(result, "copied", ())),
            )
        )

    def cancel(self, ref: Any, *, force: bool) -> None:
        with self._lock:
            entry = self.entry_of(ref)
            task = entry.task
            if task is None or task.state in ("FINISHED", "FAILED", "CANCELLED"):
                return
            if task.kind == "actor_method" and force:
                raise ValueError(
                    "force=True is not supported for actor tasks. Use ray.kill(actor) to "
                    "kill the actor instead."
                )
            error: BaseException = (
                WorkerCrashedError() if force else TaskCancelledError(ray.TaskID(task.task_id))
            )
            if task.state == "RUNNING":
                self._release(task)
                task.attempt += 1
            elif (
                task.kind == "actor_method" and task.actor is not None and task in task.actor.queue
            ):
                task.actor.queue.remove(task)
            self._finish_failed(task, error)
            task.state = "CANCELLED"
            task.history.append("cancelled" + (" (force)" if force else ""))
            self._pump()

    # ------------------------------------------------------------------ actors

    def create_actor(
        self,
        *,
        cls: type,
        class_name: str,
        name: str | None,
        namespace: str | None,
        get_if_exists: bool,
        submit: Callable[[Actor], Task],
    ) -> tuple[Actor, bool]:
        """Create (or, with ``get_if_exists``, find) an actor; returns (actor, created)."""
        with self._lock:
            self.check_open()
            ns = namespace or self.namespace
            if name:
                existing = self._named_actors.get((ns, name))
                if existing is not None and existing.state != "DEAD":
                    if get_if_exists:
                        return existing, False
                    from ray.exceptions import ActorAlreadyExistsError

                    raise ActorAlreadyExistsError(
                        f"The name {name} (namespace={namespace}) is already taken. Please use "
                        "a different name or get the existing actor using "
                        f"ray.get_actor('{name}', namespace='{namespace}')"
                    )
            actor_id = self.ids.actor_id()
            placeholder = Actor(
                actor_id=actor_id,
                cls=cls,
                class_name=class_name,
                name=name,
                namespace=ns,
                creation=None,  # type: ignore[arg-type]
            )
            self.actors[actor_id] = placeholder
            if name:
                self._named_actors[(ns, name)] = placeholder
            placeholder.creation = submit(placeholder)
            return placeholder, True

    def actor_by_name(self, name: str, namespace: str | None) -> Actor | None:
        with self._lock:
            actor = self._named_actors.get((namespace or self.namespace, name))
            return actor if actor is not None and actor.state != "DEAD" else None

    def named_actors(self, all_namespaces: bool) -> list[Any]:
        with self._lock:
            alive = [(ns, n) for (ns, n), a in self._named_actors.items() if a.state != "DEAD"]
            if all_namespaces:
                return [{"name": n, "namespace": ns} for ns, n in alive]
            return [n for ns, n in alive if ns == self.namespace]

    def kill_actor(self, actor: Actor) -> None:
        with self._lock:
            if actor.state != "DEAD":
                self._kill_actor(actor, "The actor is dead because it was killed by `ray.kill`.")
                self._pump()

    def _kill_actor(self, actor: Actor, why: str) -> None:
        creation = actor.creation
        if creation.state == "RUNNING" or creation.node is not None:
            self._release(creation)
            creation.attempt += 1
            if creation.state == "RUNNING":
                creation.state = "FAILED"
        elif creation.state == "PENDING":
            self._finish_failed(creation, self._actor_died(actor, why))
        for task in self.tasks.values():
            if task.actor is actor and task.kind == "actor_method" and task.state == "RUNNING":
                task.attempt += 1
                self._finish_failed(task, self._actor_died(actor, why))
        actor.state = "DEAD"
        actor.death_message = why
        actor.worker_busy = False
        self._fail_actor_queue(actor, self._actor_died(actor, why))

    def _actor_died(self, actor: Actor, why: str) -> RayActorError:
        node = actor.creation.node if actor.creation is not None else None
        lines = [
            ActorDiedError.BASE_ERROR_MSG,
            f"\tclass_name: {actor.class_name}",
            f"\tactor_id: {actor.hex}",
            f"\tpid: {os.getpid()}",
        ]
        if actor.name:
            lines.append(f"\tname: {actor.name}")
        lines.append(f"\tnamespace: {actor.namespace}")
        if node is not None:
            lines.append(f"\tip: {node.ip}")
        lines.append(why)
        error = ActorDiedError()
        error.actor_id = actor.hex
        error.error_msg = "\n".join(lines)
        return error

    def _fail_actor_queue(self, actor: Actor, error: BaseException) -> None:
        while actor.queue:
            self._finish_failed(actor.queue.popleft(), error)

    def _kick_actor(self, actor: Actor) -> bool:
        if actor.state == "DEAD":
            self._fail_actor_queue(actor, self._actor_died(actor, actor.death_message))
            return False
        if actor.state != "ALIVE" or actor.worker_busy or not actor.queue:
            return bool(actor.queue)
        task = actor.queue[0]
        deps = self._deps_state(task)
        if deps is False:
            return True
        actor.queue.popleft()
        if deps is not True:
            self._finish_failed(task, deps)  # type: ignore[arg-type]
            return bool(actor.queue)
        creation = actor.creation
        task.node = creation.node
        task.ran_on = creation.node
        task.bundle = None
        task.gpu_alloc = list(creation.gpu_alloc)
        task.ran_gpu_ids = tuple(gpu_ids(task.gpu_alloc))
        task.group = creation.group
        task.state = "RUNNING"
        task.attempt += 1
        task.started_at = self.clock.now()
        assert creation.node is not None
        task.history.append(f"attempt {task.attempt} on {creation.node.name}")
        actor.worker_busy = True
        self._launch(task, task.attempt)
        return bool(actor.queue)

    # ------------------------------------------------------------------ pump

    def _pump(self) -> None:
        self._advance_due()
        if self._pending_groups:
            for group in list(self._pending_groups):
                self._try_place_group(group)
        if self._pending_tasks:
            for task in list(self._pending_tasks):
                self._try_start(task)
        if self._actors_with_work:
            for actor in list(self._actors_with_work):
                if not self._kick_actor(actor):
                    self._actors_with_work.discard(actor)
        self._cond.notify_all()

    # ------------------------------------------------------------------ describing

    def _describe_objects(self, entries: Iterable[ObjectEntry]) -> str:
        parts = []
        for entry in entries:
            if entry.ready:
                continue
            if entry.kind == "pg_ready" and entry.group is not None:
                parts.append(f"ready() of {self._describe_group(entry.group)}")
            elif entry.task is not None:
                parts.append(self._describe_task(entry.task))
        return " ".join(parts) or "(nothing pending)"

    def _describe_group(self, group: Group) -> str:
        needed = total_of(b.demand for b in group.bundles)
        state = f"{group.state}, {group.scheduling_state}"
        why = {
            "INFEASIBLE": "no set of alive nodes could ever hold it with this strategy",
            "NO_RESOURCES": "it fits the cluster's totals but the resources are taken",
            "REMOVED": "it was removed",
        }.get(group.scheduling_state, "")
        return (
            f"placement group {group.hex} (name={group.name!r}, strategy {group.strategy}, "
            f"bundles {group.bundle_specs}) is {state}{': ' + why if why else ''}. It needs "
            f"{format_resources(needed)} in total; the cluster has "
            f"{self._fmt_cluster(available=False)} in total and "
            f"{self._fmt_cluster(available=True)} available, per node: {self._fmt_nodes()}."
        )

    def _describe_task(self, task: Task) -> str:
        state = task.state.lower()
        if task.state == "RUNNING":
            state = "running but itself blocked in ray.get/ray.wait"
        text = (
            f"task {task.name} ({task.function_name}) is {state}"
            f"{': ' + task.pending_reason if task.pending_reason else ''}; it asks "
            f"{format_resources(task.demand)}."
        )
        if task.group is not None:
            text += f" Its group: {self._describe_group(task.group)}"
        else:
            text += (
                f" The cluster has {self._fmt_cluster(available=False)} in total and "
                f"{self._fmt_cluster(available=True)} available."
            )
        return text

    def _fmt_cluster(self, *, available: bool) -> str:
        out: Units = {}
        for node in self._alive:
            add(out, node.avail if available else node.total)
        return format_resources(out)

    def _fmt_nodes(self) -> str:
        shown = self._alive[:8]
        text = ", ".join(f"{n.name} {format_resources(n.avail)} free" for n in shown)
        if len(self._alive) > len(shown):
            text += f", ... ({len(self._alive)} alive nodes)"
        return text

    # ------------------------------------------------------------------ shutdown

    def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting work and give running task bodies ``grace_s`` real seconds."""
        import time

        with self._lock:
            self.closed = True
            deadline = time.monotonic() + grace_s
            while self._running > 0 and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())


def _gpu_allocations(bundles: Sequence[Bundle], nodes: Sequence[Node]) -> list[GpuAlloc]:
    """Take each bundle's GPU devices from its node, in bundle order as Ray does (bundle 0
    gets the lowest free device); largest first if that order would not fit."""
    from .placement import bundle_order

    for order in (list(range(len(bundles))), bundle_order(bundles)):
        trial = {id(n): list(n.gpus) for n in nodes}
        allocs: list[GpuAlloc | None] = [None] * len(bundles)
        for i in order:
            allocs[i] = allocate_gpus(trial[id(nodes[i])], bundles[i].demand.get(GPU, 0))
            if allocs[i] is None:
                break
        else:
            for node in nodes:
                node.gpus[:] = trial[id(node)]
            return [a or [] for a in allocs]
    raise AssertionError("placement plan and GPU allocation disagree")  # pragma: no cover


def _is_removed(group: Group) -> bool:
    return group.state == "REMOVED"


def _node_fits(node: Node, demand: Mapping[str, int]) -> bool:
    if not fits(node.avail, demand):
        return False
    need = demand.get(GPU, 0)
    return need <= 0 or gpu_fits(node.gpus, need)


def _node_can_hold(node: Node, demand: Mapping[str, int]) -> bool:
    if not fits(node.total, demand):
        return False
    need = demand.get(GPU, 0)
    return need <= 0 or gpu_fits(list(node.gpu_capacity), need)


def _gpu_cap_fits(bundle: Bundle, demand: Mapping[str, int]) -> bool:
    need = demand.get(GPU, 0)
    if need <= 0:
        return True
    return gpu_fits([u for _, u in bundle.gpu_alloc] or [0], need)


def _short(error: BaseException | None) -> str:
    if error is None:
        return "-"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"
