"""Our processes, told apart from everyone else's by the cluster's token and session.

Every process a local cluster starts (GCS, raylets, the agents and workers the raylets
spawn) inherits ``RAYCALLBACKS_CLUSTER_TOKEN=<token>`` (see :mod:`.environment`), a value
unique to one cluster, and runs in the keeper's session (the keeper starts in a session of
its own and Ray starts no session of its own). Contract:

* :class:`Owner` names a cluster's processes: its ``token``, and the id of the keeper's
  ``session`` when the caller knows the keeper's pid cannot have been reused (the keeper
  itself; its parent while it has not reaped the keeper's exit status).
* :func:`owned_processes` lists the live processes of an :class:`Owner`: those whose
  environment carries the token, and those in its session (which catches a process whose
  environment cannot be read at that instant, e.g. during ``exec``, or that a worker
  started with an environment of its own). Zombies and this process are excluded. It never
  matches another cluster's or another user's processes.
* :func:`processes_with_token` is :func:`owned_processes` for a token alone.
* :func:`signal_owned` sends a signal to exactly the given processes, re-checking each one
  right before, so a recycled pid is never hit.
* :func:`terminate` signals exactly the given pids (SIGTERM, then SIGKILL after a bound),
  re-checking the token before each signal.
* On systems without ``/proc`` the scan finds nothing (:data:`SCAN_SUPPORTED` is false);
  teardown then relies on Ray's own process list.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .environment import TOKEN_ENV

PROC: Final = Path("/proc")
SCAN_SUPPORTED: Final = PROC.is_dir()


@dataclass(frozen=True)
class OwnedProcess:
    """A live process carrying our token: pid and its command line (for messages)."""

    pid: int
    cmdline: str


@dataclass(frozen=True)
class Owner:
    """Whose processes to find: the cluster's ``token`` and, when safe, the keeper's
    ``session`` id (see the module docstring)."""

    token: str
    session: int | None = None

    def needle(self) -> bytes:
        return f"{TOKEN_ENV}={self.token}".encode()


def _has_token(pid: int, needle: bytes) -> bool:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return needle in environ.split(b"\0")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state, ppid, pgrp, session, ...), or ``None``."""
    try:
        raw = (PROC / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def session_of(pid: int) -> int | None:
    """The session id of ``pid`` (``None`` when it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[3]) if fields is not None and len(fields) > 3 else None


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _is_owned(pid: int, owner: Owner, needle: bytes) -> bool:
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if owner.session is not None and len(fields) > 3 and int(fields[3]) == owner.session:
        return True
    return bool(owner.token) and _has_token(pid, needle)


def owned_processes(owner: Owner) -> list[OwnedProcess]:
    """Live processes (not zombies, not this one) of ``owner``: see the module docstring."""
    if not SCAN_SUPPORTED or not (owner.token or owner.session):
        return []
    needle = owner.needle()
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != me and _is_owned(pid, owner, needle):
            found.append(OwnedProcess(pid, _cmdline(pid)))
    return found


def processes_with_token(token: str) -> list[OwnedProcess]:
    """Live processes (not zombies, not this one) whose environment carries ``token``."""
    return owned_processes(Owner(token)) if token else []


def signal_owned(owner: Owner, pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` that is still a process of ``owner``."""
    needle = owner.needle()
    for pid in pids:
        if pid != os.getpid() and _is_owned(pid, owner, needle):
            with contextlib.suppress(OSError):
                os.kill(pid, sig)


def terminate(token: str, pids: Iterable[int], *, grace_s: float = 5.0) -> list[int]:
    """SIGTERM each pid that still carries ``token``, SIGKILL those alive after ``grace_s``.

    Returns the pids still alive at the end (normally none).
    """
    needle = f"{TOKEN_ENV}={token}".encode()
    targets = [pid for pid in pids if pid != os.getpid() and _has_token(pid, needle)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            if _has_token(pid, needle):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            targets = [p for p in targets if _has_token(p, needle) and not _is_zombie(p)]
            if not targets:
                return []
            time.sleep(0.05)
    return [p for p in targets if _has_token(p, needle) and not _is_zombie(p)]
