"""Breaks errors.within-timeout: a synchronous sleep inside ``async def`` blocks the loop.

``asyncio.wait_for`` on the loop the callback runs on could never fire: the kit must bound
the call from outside that loop, name the cause, and run no more of this callback's code.
"""

import time

BREAKS = "errors.within-timeout"
SPEC = "bad_blocks_event_loop.callback"
OPTIONS = ("--raycallbacks-timeout", "1")


async def callback(phase, config, data):
    time.sleep(3600)  # should be: await asyncio.sleep(...)
    return None
