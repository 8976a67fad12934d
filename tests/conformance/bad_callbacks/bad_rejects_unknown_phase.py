"""Breaks phases.unknown-names: raises on a phase it does not handle."""

BREAKS = "phases.unknown-names"
SPEC = "bad_rejects_unknown_phase.callback"

HANDLED = (
    "pre_initialization",
    "pre_download",
    "post_download",
    "post_placement_group",
    "pre_engine_init",
    "post_initialization",
)


def callback(phase, config, data):
    if phase not in HANDLED:
        raise ValueError(f"unexpected phase {phase!r}")
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"enforce_eager": True}}
    return None
