"""Breaks merge.reserved-types: skip_default_init given as a string."""

BREAKS = "merge.reserved-types"
SPEC = "bad_reserved_type.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"skip_default_init": "no"}
    return None
