"""Breaks cluster.placement-group: one bundle asks for more GPUs than any node has."""

from ray.util import placement_group

BREAKS = "cluster.placement-group"
SPEC = "bad_oversized_group.callback"


def callback(phase, config, data):
    if phase == "post_download":
        return {"placement_group": placement_group([{"GPU": 16}], strategy="STRICT_PACK")}
    return None
