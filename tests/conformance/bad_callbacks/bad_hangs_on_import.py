"""Breaks loading.import-time: importing the module never returns.

It stands for a blocking network call at import time; the kit must never import it in the
test process, and must still certify the other callbacks of the run.
"""

import threading

BREAKS = "loading.import-time"
SPEC = "bad_hangs_on_import.callback"
OPTIONS = ("--raycallbacks-timeout", "1")

threading.Event().wait()  # stands for: requests.get(...) at import, with no timeout


def callback(phase, config, data):
    return None
