"""What the runner records about each callback call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["ok", "error", "timeout"]

#: ``TraceEntry.callback`` for writes made between callback calls (by the system).
SYSTEM: str = "<system>"


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One callback call (or one batch of system writes between calls).

    ``returned`` lists the keys of the mapping the callback returned; ``added``,
    ``changed`` and ``removed`` are the keys of ``data`` the call added, overwrote or
    deleted, whether by returning them or by writing ``data`` in place. ``index`` is the
    callback's position in the runner's list (``-1`` for system writes).
    """

    phase: str
    index: int
    callback: str
    returned: tuple[str, ...]
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    duration_s: float
    outcome: Outcome
    error: BaseException | None = None

    @property
    def touched(self) -> tuple[str, ...]:
        """Every key this call added, changed or removed."""
        return self.added + self.changed + self.removed


@dataclass(frozen=True, slots=True)
class CallbackFailure:
    """An error collected under ``error_policy="continue"``."""

    phase: str
    index: int
    callback: str
    error: Exception


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """Who last set a key of ``data``, and in which phase."""

    key: str
    callback: str
    index: int
    phase: str
    value: Any
