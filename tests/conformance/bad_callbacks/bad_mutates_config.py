"""Breaks merge.config-untouched: forces tensor parallelism by editing the config."""

BREAKS = "merge.config-untouched"
SPEC = "bad_mutates_config.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        config.engine_kwargs["enforce_eager"] = True
    return None
