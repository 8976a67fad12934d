"""Breaks cluster.runtime-env: ships a working_dir that does not exist."""

BREAKS = "cluster.runtime-env"
SPEC = "bad_runtime_env.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        return {"runtime_env": {"env_vars": {"MODE": "prod"}, "workding_dir": "./app"}}
    return None
