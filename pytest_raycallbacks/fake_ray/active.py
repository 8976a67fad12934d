"""Which fake cluster is active in this process: the one place that knows.

Contract: at most one engine is active at a time (one process has one Ray driver).
:mod:`.patching` sets it when a cluster activates and clears it when it deactivates;
everything else (the dispatchers, refs and actor handles unpickled or awaited later) only
reads it. This module imports nothing of the fake but :mod:`.errors`, so any module can
use it without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import FakeRayActivationError

if TYPE_CHECKING:
    from .engine import Engine

_engine: Engine | None = None


def active_engine() -> Engine:
    """The engine of the active fake cluster (raises if none is active)."""
    engine = _engine
    if engine is None:
        raise FakeRayActivationError(
            "no fake Ray cluster is active: objects of a fake cluster can only be used "
            "while it runs (inside `with FakeRayCluster():` or the fake_ray_cluster fixture)"
        )
    return engine


def active_engine_or_none() -> Engine | None:
    """The engine of the active fake cluster, or ``None`` (real Ray serves the calls)."""
    return _engine


def is_active() -> bool:
    return _engine is not None


def set_active(engine: Engine | None) -> None:
    """Make ``engine`` the active one (``None``: no fake cluster is active)."""
    global _engine
    _engine = engine
