"""Breaks merge.return-type: returns True to say 'handled'."""

BREAKS = "merge.return-type"
SPEC = "bad_returns_bool.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        data.setdefault("myteam.engine", "vllm")
        return True
    return None
