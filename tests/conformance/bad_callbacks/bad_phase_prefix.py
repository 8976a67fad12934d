"""Breaks phases.known-names: tests a phase prefix no phase has."""

BREAKS = "phases.known-names"
SPEC = "bad_phase_prefix.callback"


def callback(phase, config, data):
    if phase.startswith("before_"):
        return {"myteam.started": True}
    return None
