"""Breaks loading.importable: importing the module ends the interpreter.

``os._exit`` skips every handler; had the kit imported it in the test process, the run
would have ended there with no certificate.
"""

import os

BREAKS = "loading.importable"
SPEC = "bad_exits_on_import.callback"
OPTIONS = ("--raycallbacks-timeout", "1")

if not os.environ.get("MYTEAM_CLUSTER_TOKEN_FOR_TESTS"):
    os._exit(3)


def callback(phase, config, data):
    return None
