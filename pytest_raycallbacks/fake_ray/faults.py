"""Injected faults: tasks that fail, tasks that are slow.

A :class:`Fault` matches tasks by function, task name and node (all optional, all must
match) and, for each matching run (up to ``times``), first delays the task body by
``delay_s`` seconds of cluster time (the task holds its resources meanwhile) and then, if
``error`` is set, raises it inside the task instead of running the body, so it surfaces as
Ray surfaces task errors (``RayTaskError`` that is also an instance of the error's type).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Node, Task


def function_path(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (how faults and task records name it)."""
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    return f"{module}.{qualname}"


@dataclass(eq=False)
class Fault:
    """One injected fault (see the module doc). ``fired`` counts the runs it hit."""

    function: str | None = None
    name: str | None = None
    node: str | None = None
    error: BaseException | type[BaseException] | None = None
    delay_s: float = 0.0
    times: int | None = None
    fired: int = 0
    hits: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be None or >= 1, got {self.times!r}")
        if self.error is None and not self.delay_s:
            raise ValueError("a fault needs an error, a delay_s, or both")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, task: Task, node: Node) -> bool:
        if self.exhausted:
            return False
        if self.function is not None and not _glob(task.function_name, self.function):
            return False
        if self.name is not None and not _glob(task.name, self.name):
            return False
        return self.node is None or self.node in (node.name, node.node_id)

    def make_error(self) -> BaseException | None:
        if self.error is None:
            return None
        if isinstance(self.error, type):
            return self.error(f"fault injected by fake_ray_cluster (fault {self.describe()})")
        return self.error

    def describe(self) -> str:
        parts = [
            f"{k}={v!r}"
            for k, v in (
                ("function", self.function),
                ("name", self.name),
                ("node", self.node),
                ("delay_s", self.delay_s or None),
                ("times", self.times),
            )
            if v is not None
        ]
        return ", ".join(parts) or "any task"


def _glob(value: str, pattern: str) -> bool:
    """Exact match, glob match, or a match of the last dotted part(s) of ``value``."""
    if value == pattern or fnmatch.fnmatchcase(value, pattern):
        return True
    return value.endswith("." + pattern)
