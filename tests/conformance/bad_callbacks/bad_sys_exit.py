"""Breaks errors.only-exceptions: exits the process when a setting is missing."""

import os
import sys

BREAKS = "errors.only-exceptions"
SPEC = "bad_sys_exit.callback"


def callback(phase, config, data):
    if phase == "pre_initialization" and not os.environ.get("MYTEAM_LICENSE_KEY_FOR_TESTS"):
        sys.exit("MYTEAM_LICENSE_KEY_FOR_TESTS is not set")
    return None
