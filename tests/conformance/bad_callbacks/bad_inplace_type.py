"""Breaks merge.reserved-types: writes extra_init_kwargs in place as a list of pairs."""

BREAKS = "merge.reserved-types"
SPEC = "bad_inplace_type.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        data["extra_init_kwargs"] = [("max_model_len", 4096)]
    return None
