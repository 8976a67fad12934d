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
  ``pytest_unconfigure``, where an interrupted run also makes sure the process ends with
  pytest's status 2 (:func:`forget_caught_interrupt`), however pytest was started.
* From the first interrupt on (either way it is noticed), this process never starts a Ray
  cluster by itself (:func:`forbid_ray_autostart`). An interrupt abandons the thread a check
  was waiting for (its callback, or the kit's harness around it, keeps running: Python
  cannot stop a thread); once the run's clusters are gone (the fake one deactivated, the
  live driver disconnected), that thread's next Ray call would make Ray start a local
  cluster inside the test process (Ray's automatic ``ray.init()``), under
  ``$RAY_TMPDIR/ray``, outliving the run. With the automatic start off, that call fails
  ("Ray has not been started yet") and the thread's outcome is dropped, as it is anyway.
  This holds until the process exits (the thread may outlive pytest's teardown); an
  explicit ``ray.init()`` is left as it is.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, Final

#: pytest's exit status for an interrupted run (``pytest.ExitCode.INTERRUPTED``).
INTERRUPTED_STATUS: Final = 2
_SECOND: Final = (
    b"\nraycallbacks: second interrupt: exiting now; the live cluster's keeper ends what it "
    b"started\n"
)

#: Ray's switch for its automatic ``ray.init()``: the variable (read when Ray is imported)
#: and the module flag it sets.
RAY_AUTOSTART_ENV: Final = "RAY_ENABLE_AUTO_CONNECT"
_RAY_AUTOSTART_MODULE: Final = "ray._private.auto_init_hook"

_saved: dict[int, Any] = {}
_count = 0


def interrupted() -> bool:
    """Has this process been interrupted (Ctrl-C or SIGTERM) since it started?"""
    return _count > 0


def mark_interrupted() -> None:
    """Record an interrupt that did not go through :func:`install`'s handler (and turn
    Ray's automatic start off, as the handler does)."""
    global _count
    _count = max(_count, 1)
    forbid_ray_autostart()


def forbid_ray_autostart() -> None:
    """Turn Ray's automatic ``ray.init()`` off in this process for good (module docstring):
    Ray's flag when Ray is imported, its variable for an import still to come. Imports
    nothing."""
    os.environ[RAY_AUTOSTART_ENV] = "0"
    hook: Any = sys.modules.get(_RAY_AUTOSTART_MODULE)
    if hook is not None:
        hook.enable_auto_connect = False


def forget_caught_interrupt() -> None:
    """Let this process end with the status pytest returns after an interrupt it caught.

    CPython marks a ``KeyboardInterrupt`` that propagated out of ``exec()`` or ``eval()`` of
    a string as unhandled even when code further up catches it (pytest does): ``python -m
    pytest`` then ends by SIGINT (status -2; 130 in a shell) instead of with pytest's 2.
    ``dataclasses`` and ``collections.namedtuple`` build their methods that way, so an
    interrupt that lands while a module defines its classes does this. The next ``exec()``
    of a string clears the mark (a ``KeyboardInterrupt`` that really goes uncaught still
    ends the process by SIGINT: the interpreter marks it again then).
    """
    exec("pass")


def _handle(signum: int, frame: FrameType | None) -> None:
    global _count
    _count += 1
    if _count == 1:
        forbid_ray_autostart()
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
        if interrupted():
            forget_caught_interrupt()
