"""Breaks cluster.placement-group: a CPU-only group for an engine that needs a GPU."""

from ray.util import placement_group

BREAKS = "cluster.placement-group"
SPEC = "bad_undersized_group.callback"


def callback(phase, config, data):
    if phase == "post_download":
        return {"placement_group": placement_group([{"CPU": 1}])}
    return None
