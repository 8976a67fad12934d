"""Adds environment variables to whatever runtime env is there."""

SPEC = "good_runtime_env.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        env = dict(data.get("runtime_env") or {})
        env["env_vars"] = {**env.get("env_vars", {}), "HF_HUB_OFFLINE": "1"}
        return {"runtime_env": env}
    return None
