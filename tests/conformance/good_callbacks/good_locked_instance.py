"""A module-level instance holding a lock, loaded by its spec: each node loads the spec by
its path, nothing pickles the object, so it is certified; loading.shippable gives advice
(placing the object itself in LLMConfig.callbacks would not ship)."""

import threading

SPEC = "good_locked_instance.callback"


class LockingCallback:
    def __init__(self):
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, phase, config, data):
        with self._lock:
            self.calls += 1
        return None


callback = LockingCallback()
