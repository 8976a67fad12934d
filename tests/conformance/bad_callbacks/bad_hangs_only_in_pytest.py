"""A module that imports at once in a fresh interpreter but blocks when pytest imports it:
at import time it waits for something of the importing process's (here, for an event
nobody sets, wherever pytest is loaded: as a module waiting for a server, a lock or a
thread of its host would). The admission probe passes it; the kit's own import must not
hang the run."""

import sys
import threading

SPEC = "bad_hangs_only_in_pytest.callback"
BREAKS = "loading.importable"
OPTIONS = ("--raycallbacks-timeout", "1")

if "_pytest" in sys.modules:
    threading.Event().wait()


def callback(phase, config, data):
    return None
