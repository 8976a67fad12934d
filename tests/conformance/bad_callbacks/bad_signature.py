"""Breaks loading.signature: forgot the config parameter."""

BREAKS = "loading.signature"
SPEC = "bad_signature.callback"


def callback(phase, data):
    return None
