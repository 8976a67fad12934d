"""Per-task environment variables without touching the process environment.

Real Ray runs each task in a worker process whose environment has the task's
``CUDA_VISIBLE_DEVICES``, its runtime env's ``env_vars`` and its node's variables, and
whatever the task writes to ``os.environ`` stays in that worker. The fake runs tasks as
threads of the test process, so while a cluster is active it swaps ``os.environ``'s
backing dict (``os.environ._data``) for :class:`_OverlayData`: outside tasks it behaves
exactly as before; inside a task (a :data:`OVERLAY` context) reads see the task's
variables on top of the process's and writes stay in the task.

``os.environ`` itself keeps its identity, and :func:`uninstall` puts the original dict
back (with any changes the driver made meanwhile). Limit: the C-level environment (what a
subprocess started with ``env=None`` inherits) is the process's, not the task's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

#: The current task's variables (encoded as ``os.environ`` stores them; ``None`` = unset).
OVERLAY: ContextVar[dict[Any, Any] | None] = ContextVar("fake_ray_env_overlay", default=None)

_original: dict[Any, Any] | None = None


class _OverlayData(dict):  # type: ignore[type-arg]
    """``os.environ._data`` while a fake cluster is active (see the module doc)."""

    def __getitem__(self, key: Any) -> Any:
        overlay = OVERLAY.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return dict.__getitem__(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        overlay = OVERLAY.get()
        if overlay is not None:
            overlay[key] = value
        else:
            dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        overlay = OVERLAY.get()
        if overlay is not None:
            if key not in self:
                raise KeyError(key)
            overlay[key] = None
        else:
            dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        overlay = OVERLAY.get()
        if overlay is not None and key in overlay:
            return overlay[key] is not None
        return dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def _merged(self) -> dict[Any, Any]:
        merged = dict(dict.items(self))
        overlay = OVERLAY.get()
        if overlay:
            for key, value in overlay.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        return merged

    def __iter__(self) -> Iterator[Any]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def keys(self) -> Any:
        return self._merged().keys()

    def items(self) -> Any:
        return self._merged().items()

    def values(self) -> Any:
        return self._merged().values()

    def copy(self) -> dict[Any, Any]:
        return self._merged()


def install() -> None:
    """Swap in the overlay (idempotent)."""
    global _original
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict) or isinstance(data, _OverlayData):
        return
    _original = data
    os.environ._data = _OverlayData(data)  # type: ignore[attr-defined]


def uninstall() -> None:
    """Put the original backing dict back, with the driver's changes applied."""
    global _original
    data = getattr(os.environ, "_data", None)
    if _original is None or not isinstance(data, _OverlayData):
        return
    original = _original
    _original = None
    original.clear()
    original.update(dict.items(data))
    os.environ._data = original  # type: ignore[attr-defined]


def encode(variables: Mapping[str, str]) -> dict[Any, Any]:
    """Encode ``str`` variables the way ``os.environ`` stores them."""
    env = os.environ
    encodekey = getattr(env, "encodekey", lambda k: k)
    encodevalue = getattr(env, "encodevalue", lambda v: v)
    return {encodekey(k): encodevalue(str(v)) for k, v in variables.items()}
