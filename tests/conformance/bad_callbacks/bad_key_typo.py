"""Breaks merge.reaches-output: misspells extra_init_kwargs, so the engine never sees it."""

BREAKS = "merge.reaches-output"
SPEC = "bad_key_typo.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwarg": {"max_model_len": 4096}}
    return None
