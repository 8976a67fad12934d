"""Breaks process.import-path: puts a plugins folder on sys.path at every initialization."""

import os
import sys

BREAKS = "process.import-path"
SPEC = "bad_extends_sys_path.callback"

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")


def callback(phase, config, data):
    if phase == "pre_initialization":
        sys.path.insert(0, PLUGINS)
    return None
