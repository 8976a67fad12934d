"""Breaks loading.importable: imports a package the deployment does not have."""

import vllm_custom_ops_that_is_not_installed  # noqa: F401

BREAKS = "loading.importable"
SPEC = "bad_missing_dependency.callback"


def callback(phase, config, data):
    return None
