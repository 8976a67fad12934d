"""What a test can read back from a fake cluster: records of calls, groups, tasks,
downloads, and the leak report made at teardown.

Records are frozen snapshots (plain data): reading them never changes the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallRecord:
    """One call of a Ray API served by the fake (``api`` is its public name)."""

    seq: int
    api: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    thread: str
    task_id: str | None
    time: float
    error: str | None = None

    def __str__(self) -> str:
        where = f" in task {self.task_id[:12]}" if self.task_id else ""
        outcome = f" -> raised {self.error}" if self.error else ""
        return f"#{self.seq} {self.api}{where}{outcome}"


@dataclass(frozen=True)
class PlacementGroupRecord:
    """A placement group as the fake knows it (``bundle_nodes``: node id per bundle)."""

    id: str
    name: str
    strategy: str
    bundles: tuple[dict[str, float], ...]
    state: str
    scheduling_state: str
    bundle_nodes: tuple[str, ...]
    bundle_node_names: tuple[str, ...]
    creator: str
    created_at: float
    removed_at: float | None


@dataclass(frozen=True)
class TaskRecord:
    """A task (or actor creation / actor call) with its options and where it ran."""

    id: str
    kind: str
    function: str
    name: str
    options: dict[str, Any]
    resources: dict[str, float]
    strategy: str
    placement_group: str | None
    bundle_index: int
    state: str
    node_id: str | None
    node_name: str | None
    gpu_ids: tuple[int, ...]
    attempts: int
    error: str | None
    pending_reason: str
    history: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DownloadRecord:
    """A model download a task ran on a node (from a ``NodeDownload`` task result)."""

    node_id: str
    node_name: str
    task_id: str
    downloadable: str
    path: str
    files: tuple[str, ...]
    copied: tuple[str, ...]


@dataclass(frozen=True)
class LeakReport:
    """What was still alive when the cluster closed."""

    placement_groups: tuple[PlacementGroupRecord, ...]
    tasks: tuple[TaskRecord, ...]
    actors: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.placement_groups or self.tasks or self.actors)

    def describe(self) -> str:
        if not self:
            return "no leaks"
        lines = []
        for g in self.placement_groups:
            lines.append(
                f"placement group {g.id} (name={g.name!r}, {g.strategy}, bundles "
                f"{list(g.bundles)}, state {g.state}) was never removed "
                "(call ray.util.remove_placement_group, or hand it over in "
                "data['placement_group'])"
            )
        for t in self.tasks:
            lines.append(f"task {t.name} ({t.function}) was still {t.state.lower()}")
        for a in self.actors:
            lines.append(f"actor {a} was still alive")
        return "; ".join(lines)
