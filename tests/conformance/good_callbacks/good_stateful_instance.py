"""A module-level instance with plain state (timings), setting extra_init_kwargs."""

import time

SPEC = "good_stateful_instance.callback"


class Timings:
    def __init__(self):
        self.started = {}

    def __call__(self, phase, config, data):
        self.started[phase] = time.monotonic()
        if phase == "pre_engine_init":
            return {
                "extra_init_kwargs": {
                    **data.get("extra_init_kwargs", {}),
                    "disable_log_stats": False,
                }
            }
        if phase == "post_initialization":
            return {"myteam.phases_seen": len(self.started)}
        return None


callback = Timings()
