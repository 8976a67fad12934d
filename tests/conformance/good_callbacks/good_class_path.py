"""A class spec (colon and dot form): instantiated with no arguments on each replica."""

from reference_runner.phases import POST_INITIALIZATION, PRE_INITIALIZATION

SPEC = "good_class_path:WarmupCallback"
ALSO = "good_class_path.WarmupCallback"


class WarmupCallback:
    def __init__(self, warmup_requests=4):
        self.warmup_requests = warmup_requests
        self.runs = 0

    def __call__(self, phase, config, data):
        if phase == PRE_INITIALIZATION:
            self.runs += 1
            return {"myteam.warmup": {"requests": self.warmup_requests}}
        if phase == POST_INITIALIZATION:
            return {"myteam.ready": True}
        return None
