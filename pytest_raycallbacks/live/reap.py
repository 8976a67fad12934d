"""Ending every process of a cluster, including those a half-started node is still spawning.

One mechanism for the driver's teardown (:mod:`.teardown`) and for the keeper
(:mod:`.keeper`), which ends its cluster when its driver is gone.

Contract: :func:`reap` scans for the processes of an :class:`~.processes.Owner` (its
token, its keeper's session) again and again, sending each one found SIGTERM (SIGKILL when
``grace_s`` is 0) and SIGKILL once it has been seen for ``grace_s``, until no such process
has been seen for ``settle_s`` in a row (so a process spawned, or in the middle of
``exec``, while the others ended is caught too), or until ``bound_s`` has passed. It
returns the processes still alive then (normally none). It signals only processes of the
owner, never by name and never ``ray stop``.
"""

from __future__ import annotations

import signal
import time
from typing import Final

from .processes import OwnedProcess, Owner, owned_processes, signal_owned

#: Defaults: how long a process may take to end after SIGTERM; how long no process of the
#: owner must be seen; the overall bound.
GRACE_S: Final = 2.0
SETTLE_S: Final = 1.0
BOUND_S: Final = 15.0
_POLL_S: Final = 0.05


def reap(
    owner: Owner,
    *,
    grace_s: float = GRACE_S,
    settle_s: float = SETTLE_S,
    bound_s: float = BOUND_S,
) -> list[OwnedProcess]:
    """End every process of ``owner`` (see the module docstring); return those left."""
    deadline = time.monotonic() + bound_s
    first_seen: dict[int, float] = {}
    quiet_since: float | None = None
    while True:
        found = owned_processes(owner)
        now = time.monotonic()
        if not found:
            quiet_since = now if quiet_since is None else quiet_since
            if now - quiet_since >= settle_s:
                return []
        else:
            quiet_since = None
            fresh = [p.pid for p in found if p.pid not in first_seen]
            for pid in fresh:
                first_seen[pid] = now
            overdue = [p.pid for p in found if now - first_seen[p.pid] >= grace_s]
            if grace_s > 0:
                signal_owned(owner, fresh, signal.SIGTERM)
            signal_owned(owner, overdue, signal.SIGKILL)
        if now >= deadline:
            return owned_processes(owner)
        time.sleep(_POLL_S)
