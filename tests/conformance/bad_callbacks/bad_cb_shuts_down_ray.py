"""Breaks process.ray-connection: a CallbackBase hook "cleans up" with ray.shutdown()."""

import ray
from ray.llm._internal.common.callbacks.base import CallbackBase

BREAKS = "process.ray-connection"
SPEC = "bad_cb_shuts_down_ray:CleanUp"


class CleanUp(CallbackBase):
    async def on_after_node_init(self) -> None:
        ray.shutdown()
