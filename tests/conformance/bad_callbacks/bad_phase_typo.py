"""Breaks phases.known-names: compares against a phase name the runner never emits."""

BREAKS = "phases.known-names"
SPEC = "bad_phase_typo.callback"


def callback(phase, config, data):
    if phase == "post_model_download":
        print("downloaded:", data.get("download_result"))
    return None
