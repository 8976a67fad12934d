"""A bound method of a module-level instance: 'good_bound_method:tracker.on_phase'."""

SPEC = "good_bound_method:tracker.on_phase"
ALSO = "good_bound_method.tracker.on_phase"


class PhaseTracker:
    def __init__(self):
        self.seen = []

    def on_phase(self, phase, config, data):
        self.seen.append(phase)
        if phase == "post_initialization":
            return {"myteam.phases": len(self.seen)}
        return None


tracker = PhaseTracker()
