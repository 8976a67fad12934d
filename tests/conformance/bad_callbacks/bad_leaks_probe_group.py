"""Breaks errors.leaves-nothing-behind: probes capacity with a placement group it never
removes."""

from ray.util import placement_group

BREAKS = "errors.leaves-nothing-behind"
SPEC = "bad_leaks_probe_group.callback"


def callback(phase, config, data):
    if phase == "post_placement_group":
        probe = placement_group([{"CPU": 1}])
        probe.wait(timeout_seconds=5)
        data["myteam.capacity_ok"] = True
    return None
