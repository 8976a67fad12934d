"""Breaks errors.within-timeout: waits for something in a callback."""

import time

BREAKS = "errors.within-timeout"
SPEC = "bad_slow_call.callback"
OPTIONS = ("--raycallbacks-timeout", "1")


def callback(phase, config, data):
    if phase == "pre_download":
        time.sleep(2)
    return None
