"""Breaks process.environment: picks the engine's attention backend through os.environ."""

import os

BREAKS = "process.environment"
SPEC = "bad_sets_environ.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        os.environ["VLLM_ATTENTION_BACKEND"] = "FLASHINFER"
    return None
