"""Breaks loading.shippable: a module-level instance that holds a lock."""

import threading

BREAKS = "loading.shippable"
SPEC = "bad_unpicklable_state.callback"


class LockingCallback:
    def __init__(self):
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, phase, config, data):
        with self._lock:
            self.calls += 1
        return None


callback = LockingCallback()
