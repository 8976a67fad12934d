"""Breaks cluster.in-worker: depends on a registry that the test session's conftest.py
fills in; a Ray worker imports the module but never runs that conftest."""

from team_registry import OVERRIDES

BREAKS = "cluster.in-worker"
SPEC = "registry_dependent.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init" and OVERRIDES:
        return {"extra_init_kwargs": dict(OVERRIDES)}
    return None
