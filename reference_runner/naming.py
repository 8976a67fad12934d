"""Human-readable names for callbacks and values, used in every message and trace entry."""

from __future__ import annotations

import functools
from typing import Any


def describe_callback(callback: Any) -> str:
    """Return ``module:qualname`` for functions and classes, ``module:Class instance`` for
    callable objects, unwrapping ``functools.partial``."""
    target = callback
    suffix = ""
    if isinstance(target, functools.partial):
        target = target.func
        suffix = " (partial)"
    qualname = getattr(target, "__qualname__", None)
    module = getattr(target, "__module__", None)
    if qualname is None or module is None:
        cls = type(target)
        return f"{cls.__module__}:{cls.__qualname__} instance{suffix}"
    return f"{module}:{qualname}{suffix}"


def safe_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters (ending in ``...`` when cut). Never raises:
    a broken ``__repr__`` must not hide the error being reported."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
