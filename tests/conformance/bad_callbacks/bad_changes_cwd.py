"""Breaks process.working-directory: moves to the filesystem root to read a node file."""

import os

BREAKS = "process.working-directory"
SPEC = "bad_changes_cwd.callback"


def callback(phase, config, data):
    if phase == "pre_download":
        os.chdir("/")
        return {"myteam.has_etc": os.path.isdir("etc")}
    return None
