"""Our processes, told apart from everyone else's by the cluster's ownership token.

Every process a local cluster starts (GCS, raylets, agents, and the workers the raylets
spawn) inherits ``RAYCALLBACKS_CLUSTER_TOKEN=<token>`` (see :mod:`.environment`), a value
unique to one cluster. Contract:

* :func:`processes_with_token` lists the live processes carrying the token (read from
  ``/proc/<pid>/environ``; zombies and this process excluded). It never matches another
  cluster's or another user's Ray processes.
* :func:`terminate` signals exactly the given pids (SIGTERM, then SIGKILL after a bound),
  re-checking the token before each signal so a recycled pid is never hit.
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


def _has_token(pid: int, needle: bytes) -> bool:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return needle in environ.split(b"\0")


def _is_zombie(pid: int) -> bool:
    try:
        status = (PROC / str(pid) / "status").read_text(errors="replace")
    except OSError:
        return True
    return any(
        line.startswith("State:") and "Z" in line.split()[1:2] for line in status.splitlines()
    )


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def processes_with_token(token: str) -> list[OwnedProcess]:
    """Live processes (not zombies, not this one) whose environment carries ``token``."""
    if not SCAN_SUPPORTED or not token:
        return []
    needle = f"{TOKEN_ENV}={token}".encode()
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me or not _has_token(pid, needle) or _is_zombie(pid):
            continue
        found.append(OwnedProcess(pid, _cmdline(pid)))
    return found


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
