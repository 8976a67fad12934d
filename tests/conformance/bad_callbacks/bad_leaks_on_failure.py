"""Breaks errors.leaves-nothing-behind: reserves its group early, hands it over late; when
the download fails in between, the group is left behind."""

from ray.util import placement_group

BREAKS = "errors.leaves-nothing-behind"
SPEC = "bad_leaks_on_failure:EarlyReservation"


class EarlyReservation:
    def __init__(self):
        self.pg = None

    def __call__(self, phase, config, data):
        if phase == "pre_initialization":
            self.pg = placement_group([{"GPU": 1}] * config.num_devices)
        elif phase == "post_download":
            return {"placement_group": self.pg}
        return None
