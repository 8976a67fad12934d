"""An async bound method of a module-level instance, spelt with dots only."""

import asyncio

SPEC = "good_async_bound_method.hooks.handle"
ALSO = "good_async_bound_method:hooks.handle"


class Hooks:
    def __init__(self):
        self.count = 0

    async def handle(self, phase, config, data):
        await asyncio.sleep(0)
        self.count += 1
        if phase == "pre_engine_init":
            return {"myteam.calls_before_engine": self.count}
        return None


hooks = Hooks()
