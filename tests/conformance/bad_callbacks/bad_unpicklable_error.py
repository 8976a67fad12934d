"""Breaks errors.failure-context: raises an exception that cannot be rebuilt after pickling."""

BREAKS = "errors.failure-context"
SPEC = "bad_unpicklable_error.callback"


class SettingError(Exception):
    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field


def callback(phase, config, data):
    if phase == "pre_engine_init" and "max_model_len" not in config.engine_kwargs:
        raise SettingError("max_model_len", "must be set for this deployment")
    return None
