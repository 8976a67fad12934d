"""Interrupting a certification run: SIGTERM as Ctrl-C, and a second interrupt exits at once.

Contract (no pytest and no Ray needed to import this module):

* :func:`install` (from the main thread; elsewhere it does nothing) takes over SIGTERM when
  its handler is the default one, and SIGINT when its handler is Python's own
  (``signal.default_int_handler``; a SIGINT ignored by the shell stays ignored). The first
  interrupt raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does: pytest stops,
  tears the session down (the live cluster included) and finishes its reports. A second
  interrupt writes one line to stderr and ends the process at once with pytest's status
  for an interrupted run (2); the live cluster's keeper, which watches this process, then
  ends the cluster's processes and folder by itself.
* :func:`restore` puts back the handlers :func:`install` replaced.
* :func:`interrupted` says whether the run has been interrupted (teardown then takes its
  fast path); :func:`mark_interrupted` records an interrupt that reached Python's own
  handler (pytest's ``pytest_keyboard_interrupt`` hook calls it through
  :class:`InterruptPlugin`).
* :class:`InterruptPlugin` is the pytest side: installed while the kit runs, restored at
  ``pytest_unconfigure``.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, Final

#: pytest's exit status for an interrupted run (``pytest.ExitCode.INTERRUPTED``).
INTERRUPTED_STATUS: Final = 2
_SECOND: Final = (
    b"\nraycallbacks: second interrupt: exiting now; the live cluster's keeper ends what it "
    b"started\n"
)

_saved: dict[int, Any] = {}
_count = 0


def interrupted() -> bool:
    """Has this process been interrupted (Ctrl-C or SIGTERM) since it started?"""
    return _count > 0


def mark_interrupted() -> None:
    """Record an interrupt that did not go through :func:`install`'s handler."""
    global _count
    _count = max(_count, 1)


def _handle(signum: int, frame: FrameType | None) -> None:
    global _count
    _count += 1
    if _count == 1:
        raise KeyboardInterrupt
    os.write(2, _SECOND)
    os._exit(INTERRUPTED_STATUS)


def install() -> None:
    """Take over SIGINT and SIGTERM (see the module docstring); idempotent. A new run
    (nothing installed yet) starts uninterrupted."""
    global _count
    if threading.current_thread() is not threading.main_thread():
        return
    if not _saved:
        _count = 0
    wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    for sig, default in wanted.items():
        current = signal.getsignal(sig)
        if sig not in _saved and current is default:
            _saved[sig] = current
            signal.signal(sig, _handle)


def restore() -> None:
    """Put back the handlers :func:`install` replaced (still ours: untouched since)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_saved.items()):
        if signal.getsignal(sig) is _handle:
            signal.signal(sig, previous)
        del _saved[sig]


class InterruptPlugin:
    """Installs the handlers for the kit's run and restores them at its end."""

    def __init__(self) -> None:
        install()

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        mark_interrupted()

    def pytest_unconfigure(self, config: Any) -> None:
        restore()
