"""The process state a callback must leave alone, and putting it back (docs/design.md §The kit).

A callback runs inside a serving replica's process, next to Ray Serve's own code and the
engine. What it changes there is not passed on to the engine's workers, which Ray starts
elsewhere (other raylets, other nodes), and it can break the replica itself:

* the driver's **Ray connection** (``ray.shutdown()``, or ``ray.init()`` to another address:
  the replica loses the cluster and every object of its job);
* the **environment** (``os.environ``): workers started by other raylets never see it;
  ``runtime_env={"env_vars": ...}`` reaches them;
* the **working directory** (``os.chdir``): relative paths of every other component move;
* the **import path** (``sys.path``): every later import scans what was added.

:func:`snapshot` takes a :class:`ProcessState` of those, plus the asyncio event-loop policy
and the signal handlers (put back too, never judged); :func:`changes` lists what differs
between two snapshots, one :class:`ProcessChange` per aspect (:data:`ASPECTS`), naming
environment variables but never their values (they may be secrets); :func:`restore` puts a
snapshot back. The Ray connection is read through Ray's public API only
(``ray.is_initialized()``, ``ray.get_runtime_context()``), so on the fake cluster it is the
fake's own notion (its address, and a job id that changes with every new connection, as
Ray's does); Ray is never imported here: a process that has not imported it has no
connection.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

RAY_CONNECTION: Final = "ray-connection"
ENVIRONMENT: Final = "environment"
WORKING_DIRECTORY: Final = "working-directory"
IMPORT_PATH: Final = "import-path"
#: The aspects :func:`changes` reports, named as the ``process.*`` checks are.
ASPECTS: Final = (RAY_CONNECTION, ENVIRONMENT, WORKING_DIRECTORY, IMPORT_PATH)
_SHOWN: Final = 6


@dataclass(frozen=True)
class RayConnection:
    """The driver's connection: whether it is connected, to which address, as which job."""

    connected: bool
    address: str | None = None
    job_id: str | None = None

    def describe(self) -> str:
        if not self.connected:
            return "not connected"
        return f"connected to {self.address or '?'} as job {self.job_id or '?'}"


def ray_connection() -> RayConnection:
    """This process's Ray connection now (never imports Ray)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return RayConnection(False)
    try:
        if not ray.is_initialized():
            return RayConnection(False)
        context = ray.get_runtime_context()
        return RayConnection(True, str(context.gcs_address), str(context.get_job_id()))
    except Exception:
        return RayConnection(True)


@dataclass(frozen=True)
class ProcessState:
    """A snapshot of what :func:`snapshot` watches (see the module docstring)."""

    ray: RayConnection
    environ: dict[str, str]
    cwd: str | None
    sys_path: list[str]
    loop_policy: Any = None
    signals: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessChange:
    """What changed in one aspect (one of :data:`ASPECTS`), in words."""

    aspect: str
    what: str


def snapshot() -> ProcessState:
    """The process state now."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = None
    return ProcessState(
        ray=ray_connection(),
        environ=dict(os.environ),
        cwd=cwd,
        sys_path=list(sys.path),
        loop_policy=asyncio.get_event_loop_policy(),
        signals=_signal_handlers(),
    )


@functools.cache
def _signal_numbers() -> tuple[int, ...]:
    """The platform's signal numbers (``signal.valid_signals()`` builds a set of enums on
    every call, which would be most of a snapshot's cost)."""
    return tuple(int(number) for number in signal.valid_signals())


def _signal_handlers() -> dict[int, Any]:
    handlers = {}
    for number in _signal_numbers():
        try:
            handlers[int(number)] = signal.getsignal(number)
        except (OSError, ValueError):
            continue
    return handlers


def changes(before: ProcessState, after: ProcessState) -> list[ProcessChange]:
    """What differs from ``before`` to ``after``, at most one change per aspect."""
    found = []
    if after.ray != before.ray:
        found.append(
            ProcessChange(
                RAY_CONNECTION,
                f"the driver went from {before.ray.describe()} to {after.ray.describe()}",
            )
        )
    environ = _environ_change(before.environ, after.environ)
    if environ:
        found.append(ProcessChange(ENVIRONMENT, environ))
    if after.cwd != before.cwd:
        found.append(
            ProcessChange(
                WORKING_DIRECTORY,
                f"os.getcwd() went from {before.cwd!r} to "
                f"{after.cwd if after.cwd is not None else 'a folder that no longer exists'!r}",
            )
        )
    if after.sys_path != before.sys_path:
        found.append(ProcessChange(IMPORT_PATH, _path_change(before.sys_path, after.sys_path)))
    return found


def _environ_change(before: dict[str, str], after: dict[str, str]) -> str:
    added = sorted(k for k in after if k not in before)
    removed = sorted(k for k in before if k not in after)
    changed = sorted(k for k in after if k in before and after[k] != before[k])
    parts = []
    for label, keys in (("set", added), ("changed", changed), ("removed", removed)):
        if keys:
            parts.append(f"{label} os.environ[{_names(keys)}]")
    return "; ".join(parts)


def _path_change(before: list[str], after: list[str]) -> str:
    added = [p for p in after if p not in before]
    removed = [p for p in before if p not in after]
    parts = []
    if added:
        parts.append(f"added {_names(added)} to sys.path")
    if removed:
        parts.append(f"removed {_names(removed)} from sys.path")
    return "; ".join(parts) or "reordered sys.path"


def _names(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def restore(
    state: ProcessState,
    *,
    ray: bool = True,
    reconnect: Callable[[], Any] | None = None,
) -> list[str]:
    """Put ``state`` back; return what could not be put back (empty when all was).

    ``ray=False`` leaves the Ray connection as it is. Otherwise a driver that is no longer
    connected as in ``state`` is disconnected from wherever it is and connected again with
    ``reconnect()`` (the cluster's own way), else with ``ray.init(address=...)``; a new
    connection is a new job (its id differs from the one in ``state``). Signal handlers are
    put back only from the main thread (the only one that may set them).
    """
    problems = []
    _restore_environ(state.environ)
    if state.cwd is not None and _cwd() != state.cwd:
        try:
            os.chdir(state.cwd)
        except OSError as exc:
            problems.append(f"cannot go back to {state.cwd!r}: {exc}")
    if sys.path != state.sys_path:
        sys.path[:] = state.sys_path
    if state.loop_policy is not None and asyncio.get_event_loop_policy() is not state.loop_policy:
        asyncio.set_event_loop_policy(state.loop_policy)
    if threading.current_thread() is threading.main_thread():
        _restore_signals(state.signals)
    if ray:
        problem = _restore_ray(state.ray, reconnect)
        if problem:
            problems.append(problem)
    return problems


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def _restore_environ(before: dict[str, str]) -> None:
    current = os.environ
    for key in [k for k in current if k not in before]:
        del current[key]
    for key, value in before.items():
        if current.get(key) != value:
            current[key] = value


def _restore_signals(before: dict[int, Any]) -> None:
    for number, handler in before.items():
        if handler is None:
            continue
        try:
            if signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        except (OSError, ValueError, TypeError):
            continue


def _restore_ray(before: RayConnection, reconnect: Callable[[], Any] | None) -> str | None:
    now = ray_connection()
    if now.connected == before.connected and now.address == before.address:
        return None
    ray = sys.modules.get("ray")
    if ray is None:
        return None
    try:
        if now.connected:
            ray.shutdown()
        if before.connected:
            if reconnect is not None:
                reconnect()
            else:
                ray.init(address=before.address)
    except Exception as exc:
        return f"cannot reconnect the driver ({before.describe()}): {type(exc).__name__}: {exc}"
    return None
