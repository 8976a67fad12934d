"""Reads a file next to its module by absolute path, and a relative one inside a
contextlib.chdir block, which puts the working directory back before returning."""

import contextlib
import os
import pathlib

SPEC = "good_absolute_paths.callback"
HERE = pathlib.Path(__file__).resolve().parent


def callback(phase, config, data):
    if phase == "pre_download":
        with contextlib.chdir(HERE):
            here = os.path.isfile(pathlib.Path(__file__).name)
        return {"myteam.module_found": here and (HERE / pathlib.Path(__file__).name).is_file()}
    return None
