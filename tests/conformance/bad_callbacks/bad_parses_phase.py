"""Breaks phases.unknown-names: parses the phase name, assuming 'pre_x' / 'post_x'."""

BREAKS = "phases.unknown-names"
SPEC = "bad_parses_phase.callback"

ORDER = [
    "pre_initialization",
    "pre_download",
    "post_download",
    "post_placement_group",
    "pre_engine_init",
    "post_initialization",
]


def callback(phase, config, data):
    step = ORDER.index(phase)
    data["progress"] = f"{step + 1}/{len(ORDER)}"
    return None
