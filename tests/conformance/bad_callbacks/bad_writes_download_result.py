"""Breaks merge.ownership: drops the system's download_result 'to free memory'."""

BREAKS = "merge.ownership"
SPEC = "bad_writes_download_result.callback"


def callback(phase, config, data):
    if phase == "post_download":
        data.pop("download_result", None)
    return None
