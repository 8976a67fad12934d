"""Breaks callbackbase.run: a hook reads a callback_kwargs key the deployment does not set
(Ray wraps the KeyError in 'Error running callback method ...' and the replica never
starts)."""

from ray.llm._internal.common.callbacks.base import CallbackBase

BREAKS = "callbackbase.run"
SPEC = "bad_cb_needs_kwarg:CacheWarmer"


class CacheWarmer(CallbackBase):
    async def on_before_node_init(self) -> None:
        self.ctx.custom_data["cache"] = self.kwargs["cache_uri"]
