"""Breaks phases.lifecycle: reads download_result before the download happened."""

BREAKS = "phases.lifecycle"
SPEC = "bad_reads_missing_key.callback"


def callback(phase, config, data):
    if phase.startswith("pre_"):
        print("model at", data["download_result"].source)
    return None
