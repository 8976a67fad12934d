"""A CallbackBase class that spreads the engine over two nodes with a placement group of its
own, put in self.ctx.placement_group (the engine's from then on: Ray's initialize_node
downloads on its nodes)."""

import ray
from ray.llm._internal.common.callbacks.base import CallbackBase

SPEC = "good_cb_own_group:SpreadEngine"


class SpreadEngine(CallbackBase):
    async def on_before_node_init(self) -> None:
        group = ray.util.placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_SPREAD")
        await group.ready()
        self.ctx.placement_group = group
