"""Sends the attention backend to the engine's workers through runtime_env env_vars,
reading (never writing) this process's environment."""

import os

SPEC = "good_runtime_env_vars.callback"


def callback(phase, config, data):
    if phase == "pre_engine_init":
        backend = os.environ.get("MYTEAM_ATTENTION_BACKEND", "FLASHINFER")
        env = dict(data.get("runtime_env") or {})
        env["env_vars"] = {**env.get("env_vars", {}), "VLLM_ATTENTION_BACKEND": backend}
        return {"runtime_env": env}
    return None
