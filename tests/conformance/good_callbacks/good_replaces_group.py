"""Takes a whole node for the engine once it sees where the default group landed: it hands
a replacement group over in post_placement_group, and the system downloads onto its node."""

from ray.util import placement_group

SPEC = "good_replaces_group.callback"


def callback(phase, config, data):
    if phase == "post_placement_group":
        whole_node = placement_group([{"GPU": 8}], strategy="STRICT_PACK")
        return {"placement_group": whole_node}
    return None
