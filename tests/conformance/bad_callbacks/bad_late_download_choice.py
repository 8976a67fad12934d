"""Breaks merge.reaches-output: picks the local download after the download happened."""

BREAKS = "merge.reaches-output"
SPEC = "bad_late_download_choice.callback"


def callback(phase, config, data):
    if phase == "post_download":
        return {"local_node_download_model": "MODEL_AND_TOKENIZER"}
    return None
