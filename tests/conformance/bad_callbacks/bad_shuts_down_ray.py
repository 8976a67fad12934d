"""Breaks process.ray-connection: lets go of Ray once the node is initialized."""

import ray

BREAKS = "process.ray-connection"
SPEC = "bad_shuts_down_ray.callback"


def callback(phase, config, data):
    if phase == "post_initialization" and ray.is_initialized():
        ray.shutdown()  # "the node is set up, we no longer need the driver connection"
    return None
