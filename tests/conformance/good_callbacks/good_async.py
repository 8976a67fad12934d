"""An async callback that awaits something in each phase."""

import asyncio

SPEC = "good_async.callback"


async def callback(phase, config, data):
    await asyncio.sleep(0)
    if phase == "pre_download":
        return {"worker_node_download_model": "EXCLUDE_SAFETENSORS"}
    return None
