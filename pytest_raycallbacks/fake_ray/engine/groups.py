# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes are untyped.)
"""The engine's placement groups: creating, placing, waiting on and removing them.

Contract: pending groups are placed by the pump in creation order (:mod:`..placement`
decides the nodes; each bundle's GPU devices are taken from its node in bundle order, as
Ray does). A group that cannot be placed now says why in its ``scheduling_state``
(``NO_RESOURCES`` when the cluster could hold it once resources free up, ``INFEASIBLE``
when no set of alive nodes ever could:
:func:`reference_runner.placement_feasibility.never_placed`, the rule
``initialize_node`` applies on live clusters too). Removing a group gives its resources
back, fails its ``ready()`` objects with ``TaskPlacementGroupRemoved``, kills the tasks
running in it (Ray retries them, and they then wait forever) and its actors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray._raylet import PlacementGroupID
from ray.exceptions import RaySystemError, TaskPlacementGroupRemoved
from ray.util.placement_group import PlacementGroup

from pytest_raycallbacks.fake_ray.context import current
from pytest_raycallbacks.fake_ray.ids import object_id
from pytest_raycallbacks.fake_ray.model import DRIVER, Bundle, Group, Node, ObjectEntry
from pytest_raycallbacks.fake_ray.placement import bundle_order, plan
from pytest_raycallbacks.fake_ray.refs import FakeObjectRef
from pytest_raycallbacks.fake_ray.resources import (
    GPU,
    GpuAlloc,
    add,
    allocate_gpus,
    release_gpus,
    subtract,
    to_units,
)
from reference_runner.placement_feasibility import never_placed

from .core import EngineCore


class EngineGroups(EngineCore):
    """Placement groups as the GCS keeps them (see the module doc)."""

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
            # The rule initialize_node applies on live clusters too (one rule, shared).
            never = never_placed(group.bundles, group.strategy, self._alive)
            group.scheduling_state = "NO_RESOURCES" if never is None else "INFEASIBLE"
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


def _gpu_allocations(bundles: Sequence[Bundle], nodes: Sequence[Node]) -> list[GpuAlloc]:
    """Take each bundle's GPU devices from its node, in bundle order as Ray does (bundle 0
    gets the lowest free device); largest first if that order would not fit."""
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
