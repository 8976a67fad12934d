"""Breaks loading.signature: yields its result instead of returning it."""

BREAKS = "loading.signature"
SPEC = "bad_generator.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        yield {"extra_init_kwargs": {"enforce_eager": True}}
