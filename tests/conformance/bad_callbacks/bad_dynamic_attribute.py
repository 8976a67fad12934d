"""Breaks loading.both-forms: a module ``__getattr__`` builds a new callback on every access."""

BREAKS = "loading.both-forms"
SPEC = "bad_dynamic_attribute.callback"


def __getattr__(name):
    if name == "callback":

        def callback(phase, config, data):
            return None

        return callback
    raise AttributeError(name)
