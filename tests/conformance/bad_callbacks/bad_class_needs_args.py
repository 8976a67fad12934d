"""Breaks loading.no-arg-class: the class needs a constructor argument."""

BREAKS = "loading.no-arg-class"
SPEC = "bad_class_needs_args:DeviceCallback"


class DeviceCallback:
    def __init__(self, device_type):
        self.device_type = device_type

    def __call__(self, phase, config, data):
        if phase == "pre_engine_init":
            return {"extra_init_kwargs": {"device": self.device_type}}
        return None
