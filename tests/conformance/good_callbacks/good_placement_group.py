"""Builds its own placement group from the config, handing it over at once."""

from ray.util import placement_group

SPEC = "good_placement_group.callback"


def callback(phase, config, data):
    if phase == "post_download":
        bundles = [{"GPU": 1, "CPU": 2}] * config.num_devices
        return {"placement_group": placement_group(bundles, strategy="STRICT_PACK")}
    return None
