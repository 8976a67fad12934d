"""Breaks loading.import-time: does slow work (here: sleeps) at import time."""

import time

time.sleep(3)

BREAKS = "loading.import-time"
SPEC = "bad_slow_import.callback"
OPTIONS = ("--raycallbacks-timeout", "1")


def callback(phase, config, data):
    return None
