"""Breaks phases.second-lifecycle: consumes its state, so the second run sets nothing."""

BREAKS = "phases.second-lifecycle"
SPEC = "bad_consumes_state:ConsumingCallback"


class ConsumingCallback:
    def __init__(self):
        self.pending = [{"max_model_len": 4096}]

    def __call__(self, phase, config, data):
        if phase == "pre_engine_init" and self.pending:
            return {"extra_init_kwargs": self.pending.pop()}
        return None
