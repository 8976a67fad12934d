"""Breaks loading.importable: the spec names an attribute the module does not have."""

BREAKS = "loading.importable"
SPEC = "bad_attribute_typo.setup_callbak"


def setup_callback(phase, config, data):
    return None
