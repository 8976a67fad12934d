"""Breaks errors.within-timeout: an async callback that swallows ``CancelledError``.

It retries forever, catching the cancellation that should stop it at the deadline.
"""

import asyncio

BREAKS = "errors.within-timeout"
SPEC = "bad_swallows_cancel.callback"
OPTIONS = ("--raycallbacks-timeout", "1")


async def callback(phase, config, data):
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # should re-raise
