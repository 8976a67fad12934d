"""Breaks loading.config-roundtrip: a decorated private function exported under a public
name; its __qualname__ points back at the undecorated function."""

import functools

BREAKS = "loading.config-roundtrip"
SPEC = "bad_decorated_export.callback"


def with_logging(fn):
    @functools.wraps(fn)
    def wrapper(phase, config, data):
        print("callback", phase)
        return fn(phase, config, data)

    return wrapper


def _callback(phase, config, data):
    return None


callback = with_logging(_callback)
