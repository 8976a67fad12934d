"""Uses the driver's Ray connection as it finds it: reads the cluster, never re-inits."""

import ray

SPEC = "good_uses_ray_connection.callback"


def callback(phase, config, data):
    if phase == "post_initialization" and ray.is_initialized():
        return {"myteam.gpus": ray.cluster_resources().get("GPU", 0)}
    return None
