"""Breaks phases.second-lifecycle: refuses to initialize twice."""

BREAKS = "phases.second-lifecycle"
SPEC = "bad_once_only:OnceOnly"


class OnceOnly:
    def __init__(self):
        self.initialized = False

    def __call__(self, phase, config, data):
        if phase == "pre_initialization":
            if self.initialized:
                raise RuntimeError("already initialized")
            self.initialized = True
        return None
