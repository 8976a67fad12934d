"""The engine's explanations: what a wait that can never succeed is waiting for.

Contract: every text names the task or placement group, its state and why it is pending,
what it asks for, and what the cluster has in total, available and per node (the first
eight alive nodes), so a :class:`~..errors.FakeRayDeadlockError` says how to fix the test.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_raycallbacks.fake_ray.model import Group, ObjectEntry, Task
from pytest_raycallbacks.fake_ray.resources import Units, add, format_resources, total_of

from .core import EngineCore


class EngineDescribing(EngineCore):
    """Descriptions of pending objects, groups and tasks (see the module doc)."""

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
