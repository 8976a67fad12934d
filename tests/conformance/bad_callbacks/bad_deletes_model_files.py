"""Breaks cluster.final-group-has-model: "frees disk" by removing the downloaded model files
once the node is initialized, before the engine loads them."""

import shutil

BREAKS = "cluster.final-group-has-model"
SPEC = "bad_deletes_model_files.callback"


def callback(phase, config, data):
    if phase == "post_initialization":
        result = data.get("download_result")
        for download in (getattr(result, "nodes", None) or {}).values():
            shutil.rmtree(download.path, ignore_errors=True)
    return None
