"""Breaks merge.ownership: clears the shared data at the end 'to free memory'."""

BREAKS = "merge.ownership"
SPEC = "bad_clears_data.callback"


def callback(phase, config, data):
    if phase == "post_placement_group":
        for key in [
            k
            for k in data
            if k
            not in (
                "placement_group",
                "runtime_env",
                "extra_init_kwargs",
                "download_result",
                "local_node_download_model",
                "worker_node_download_model",
            )
        ]:
            del data[key]
    return None
