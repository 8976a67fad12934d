# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes are untyped.)
"""The engine's task scheduling: submitting tasks and choosing where each one runs.

Contract: a submitted task waits until its argument objects are ready (it fails with the
first failed one), then starts on the first place that can hold it now: a bundle of its
placement group; its affinity node (a hard affinity to a dead or too small node fails with
``TaskUnschedulableError``); or, by default, its parent's node (the head for the driver)
then the other nodes with matching labels in joining order (``SPREAD`` rotates the start).
A task that cannot start says why in ``pending_reason``. It holds its resources (from its
node, or from its bundle, GPU devices included) from start until it ends.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ray
from ray._common.serialization import pickle_dumps
from ray.exceptions import TaskUnschedulableError

from pytest_raycallbacks.fake_ray.context import current
from pytest_raycallbacks.fake_ray.ids import object_id
from pytest_raycallbacks.fake_ray.model import Actor, Bundle, Group, Node, ObjectEntry, Task
from pytest_raycallbacks.fake_ray.placement import label_match
from pytest_raycallbacks.fake_ray.resources import (
    GPU,
    GpuAlloc,
    Units,
    add,
    allocate_gpus,
    fits,
    format_resources,
    gpu_fits,
    gpu_ids,
    release_gpus,
    subtract,
    to_units,
)

from .core import EngineCore


class EngineScheduling(EngineCore):
    """Task submission, placement and resource accounting (see the module doc)."""

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
