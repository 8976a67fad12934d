"""Breaks errors.host-failures: when its GPU group cannot be placed, falls back to a CPU
group 'so the replica starts anyway'."""

from ray.util import placement_group, remove_placement_group

BREAKS = "errors.host-failures"
SPEC = "bad_swallows_placement.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"skip_default_init": True}
    if phase == "pre_engine_init":
        pg = placement_group([{"GPU": 1}] * config.num_devices)
        if not pg.wait(timeout_seconds=2):
            remove_placement_group(pg)
            pg = placement_group([{"CPU": 1}])
        return {"placement_group": pg}
    return None
