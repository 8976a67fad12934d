"""Breaks errors.within-timeout: a synchronous call that never returns.

It stands for a blocking client call with no timeout of its own.
"""

import threading

BREAKS = "errors.within-timeout"
SPEC = "bad_blocks_forever.callback"
OPTIONS = ("--raycallbacks-timeout", "1")


def callback(phase, config, data):
    if phase == "pre_download":
        threading.Event().wait()  # stands for: client.fetch() with no timeout
    return None
