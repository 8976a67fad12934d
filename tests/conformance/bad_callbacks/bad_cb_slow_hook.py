"""Breaks errors.within-timeout: a plain def hook waits for a cache server (it blocks the
replica's event loop, so only the whole start's bound can stop it)."""

import time

from ray.llm._internal.common.callbacks.base import CallbackBase

BREAKS = "errors.within-timeout"
SPEC = "bad_cb_slow_hook:WaitsForCache"
OPTIONS = ("--raycallbacks-timeout", "1")


class WaitsForCache(CallbackBase):
    def on_before_node_init(self) -> None:  # type: ignore[override]
        time.sleep(2)
