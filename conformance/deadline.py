"""Running a piece of user code under a deadline the code cannot escape.

:func:`call_with_deadline` runs ``fn()`` on a fresh daemon thread (with a copy of the
caller's ``contextvars``; with ``with_event_loop``, also a new event loop set as the thread's
current loop, left open, so ``asyncio.get_event_loop()`` in a constructor behaves as on the
main thread and a loop the instance keeps stays usable) and waits for it
with a plain ``Thread.join(timeout)``. Nothing the code does can stop that wait from ending:
not a blocking call, not a blocked event loop, not a swallowed ``CancelledError``. At the
deadline the thread is *abandoned*: it is a daemon, nobody waits for it again, and whatever
it returns or raises later is dropped. Used for constructing a class spec
(:class:`conformance.subject.Subject`) and for ``initialize_node`` as a whole
(:func:`conformance.harness.initialize_bounded`); each callback call inside is bounded on its
own by :mod:`reference_runner.bounded`.

Cost: one thread start per call (tens of microseconds), and an abandoned thread keeps its
memory until the code returns on its own (or the process ends).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_numbers = itertools.count(1)


class DeadlineExceeded(TimeoutError):
    """``fn()`` did not return within its deadline; its thread was abandoned."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        super().__init__(f"{what} did not finish within {timeout_s:g} s")


def call_with_deadline(
    fn: Callable[[], T], timeout_s: float, *, what: str, with_event_loop: bool = False
) -> T:
    """Return ``fn()``, or raise what it raised, or raise :class:`DeadlineExceeded` (naming
    ``what``) once ``timeout_s`` passed (see the module docstring)."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        if with_event_loop:
            asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            outcome["value"] = context.run(fn)
        except BaseException as exc:  # handed to the caller, never raised in this thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"raycallbacks-bounded-{next(_numbers)}")
    thread.daemon = True
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DeadlineExceeded(what, timeout_s)
    if "error" in outcome:
        error = outcome.pop("error")
        raise error
    return outcome["value"]  # type: ignore[no-any-return]


__all__ = ["DeadlineExceeded", "call_with_deadline"]
