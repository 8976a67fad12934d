"""Bounded waits. Nothing in the live cluster waits without a bound.

Contract: each helper takes ``what`` (a phrase naming what is awaited, e.g. "node abc to
join") and a bound in seconds, and raises :class:`~.errors.WaitTimeoutError` with both
when the bound passes. ``detail`` callables add what was seen at the end (resources,
states) to the message.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import WaitTimeoutError

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(what, timeout_s, _detail(detail))
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
        interval_s = min(interval_s * 1.5, 0.5)


def ray_get(ray: Any, refs: Any, *, what: str, timeout_s: float, cancel: bool = True) -> Any:
    """``ray.get(refs, timeout=...)`` raising :class:`WaitTimeoutError` naming ``what``.

    On timeout the tasks are cancelled (``force=True``) when ``cancel`` is set.
    """
    try:
        return ray.get(refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        if cancel:
            for ref in refs if isinstance(refs, list) else [refs]:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        raise WaitTimeoutError(what, timeout_s) from None


def _detail(detail: Callable[[], str] | None) -> str:
    if detail is None:
        return ""
    try:
        return detail()
    except Exception as exc:  # a broken detail must not hide the timeout
        return f"(could not describe the state: {exc})"
