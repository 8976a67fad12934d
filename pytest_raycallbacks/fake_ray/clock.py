"""The fake cluster's clock: real monotonic time plus the time it has skipped.

When every thread that could change an outcome is itself waiting on the fake (nothing
runs), a wait with a timeout has only one possible result; with ``autojump`` the clock
jumps to the end of that wait instead of sleeping through it. That is what keeps tests of
timeouts, slow tasks and infeasible groups fast and deterministic.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Monotonic seconds; :meth:`jump_to` moves it forward, never back."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() + self._offset

    def jump_to(self, when: float) -> None:
        with self._lock:
            gap = when - (time.monotonic() + self._offset)
            if gap > 0:
                self._offset += gap

    @property
    def skipped(self) -> float:
        """Seconds the clock has jumped over so far."""
        return self._offset
