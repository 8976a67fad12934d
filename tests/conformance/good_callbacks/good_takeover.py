"""Takes over initialization with skip_default_init, supplying everything itself."""

from ray.util import placement_group

SPEC = "good_takeover.callback"


def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"skip_default_init": True, "local_node_download_model": "NONE"}
    if phase == "pre_engine_init":
        return {
            "placement_group": placement_group([{"GPU": 1}] * config.num_devices),
            "runtime_env": {"env_vars": {"TAKEOVER": "1"}},
            "extra_init_kwargs": {"custom": True},
        }
    return None
