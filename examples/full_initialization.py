"""Example 4 of the source design: replace the entire initialization.

The source's ``create_custom_placement_group()`` and ``create_custom_runtime_env()`` are
real here: a Ray placement group of one GPU bundle per device the config asks for, and a
runtime env with an environment variable.
"""

from typing import Any, Dict, Optional


def create_custom_placement_group(config: Any) -> Any:
    """One {"GPU": 1} bundle per device, packed (a real Ray placement group)."""
    from ray.util import placement_group

    num_devices = getattr(config, "num_devices", 1)
    return placement_group([{"GPU": 1}] * num_devices, strategy="PACK")


def create_custom_runtime_env() -> Dict[str, Any]:
    """A runtime env Ray accepts."""
    return {"env_vars": {"CUSTOM_INIT": "1"}}


def custom_full_initialization(
    phase: str,
    config: Any,
    data: Dict[str, Any]
) -> Optional[Dict[str, Any]]:
    """Completely replace the default initialization."""

    if phase == "pre_initialization":
        # Signal to skip default initialization
        return {"skip_default_init": True}

    elif phase == "pre_engine_init":
        # Do custom initialization here
        pg = create_custom_placement_group(config)
        env = create_custom_runtime_env()

        return {
            "placement_group": pg,
            "runtime_env": env,
            "extra_init_kwargs": {"custom": True}
        }


# config = LLMConfig(
#     model_id="meta-llama/Llama-2-7b",
#     callbacks=["examples.full_initialization.custom_full_initialization"]
# )
