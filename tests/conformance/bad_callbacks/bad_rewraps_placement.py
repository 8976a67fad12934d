"""Breaks errors.host-failures: turns Ray's placement timeout into its own RuntimeError
(and leaves its pending group behind)."""

import ray
from ray.util import placement_group

BREAKS = "errors.host-failures"
SPEC = "bad_rewraps_placement.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"skip_default_init": True}
    if phase == "pre_engine_init":
        pg = placement_group([{"GPU": 1}] * config.num_devices, strategy="PACK")
        try:
            ray.get(pg.ready(), timeout=2)
        except ray.exceptions.GetTimeoutError as exc:
            raise RuntimeError("no GPU capacity for this deployment") from exc
        return {"placement_group": pg}
    return None
