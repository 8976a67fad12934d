"""Bounding code that must run on the main thread: interrupt it when it overruns.

Importing a spec in the test process has to happen on the thread that asked for it (the main
thread, as in a Ray worker: a module may install signal handlers at import time, which only
the main thread can do), so it cannot be moved to a thread the kit abandons. The admission
probe has already imported it within the limit in a fresh interpreter; a module that still
blocks here waits for something only this process has (a lock, a thread, a server of
pytest's), and the run would hang with it.

Contract. :func:`interrupt_after` runs its block on the main thread and, when the block has
not finished after ``limit_s``, delivers ``SIGURG`` to the main thread, whose handler raises
:class:`Overran` there: a blocking wait (``time.sleep``, a lock, ``Event.wait``, a socket)
returns at once and the exception unwinds the block (a failed import leaves nothing in
``sys.modules``). :class:`Overran` is a ``BaseException``, and the signal is sent again
every :data:`RESEND_S` while the block runs, so a block that catches it does not keep the
run waiting either. ``SIGURG`` because its default action is to be ignored: a signal still
in flight when the block ends (the handler then does nothing) or after the previous handler
is back is dropped, never fatal. The previous handler is always put back. Off the main
thread (or without ``pthread_kill``) the block runs unbounded, as before. Code stuck in C
without returning to the interpreter is not interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Final

#: The signal: ignored by default, unused by Python and pytest.
SIGNAL: Final = getattr(signal, "SIGURG", None)
#: How often the signal is sent again while the block still runs (it may have caught it).
RESEND_S: Final = 1.0


class Overran(BaseException):
    """The block did not finish within its limit and was interrupted (a ``BaseException``,
    as ``KeyboardInterrupt`` is, so that ``except Exception`` in the block does not swallow
    it)."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        super().__init__(f"interrupted after {limit_s:g} s")


@contextlib.contextmanager
def interrupt_after(limit_s: float) -> Iterator[None]:
    """Run the block; interrupt it with :class:`Overran` after ``limit_s``, and again every
    :data:`RESEND_S` while it still runs (see the module docstring)."""
    main = threading.main_thread()
    ident = main.ident
    if (
        SIGNAL is None
        or not hasattr(signal, "pthread_kill")
        or threading.current_thread() is not main
        or ident is None
    ):
        yield
        return
    running = [True]
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if running[0]:  # else late: the block is over
            raise Overran(limit_s)

    def watch() -> None:
        if done.wait(limit_s):
            return
        while not done.is_set():
            signal.pthread_kill(ident, SIGNAL)
            if done.wait(RESEND_S):
                return

    previous = signal.signal(SIGNAL, handler)
    watcher = threading.Thread(target=watch, name="raycallbacks-main-thread-bound", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        try:
            running[0] = False
        finally:  # whatever a signal raised just above, the watch ends and the handler is back
            done.set()
            signal.signal(SIGNAL, previous)


__all__ = ["RESEND_S", "SIGNAL", "Overran", "interrupt_after"]
