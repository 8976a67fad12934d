"""Breaks errors.only-exceptions: a branch the kit never reaches calls os._exit()."""

import os

BREAKS = "errors.only-exceptions"
SPEC = "bad_exit_branch.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init" and config.engine_kwargs.get("tensor_parallel_size", 1) > 64:
        os._exit(3)
    return None
