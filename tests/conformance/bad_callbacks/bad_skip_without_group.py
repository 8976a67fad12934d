"""Breaks cluster.initialize-node: takes over initialization but never supplies a group."""

BREAKS = "cluster.initialize-node"
SPEC = "bad_skip_without_group.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"skip_default_init": True}
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"custom": True}}
    return None
