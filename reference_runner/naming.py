"""Human-readable names for callbacks, used in every message and trace entry."""

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
