"""The team's initialization callbacks."""

from __future__ import annotations

from typing import Any

from ray.util import placement_group

from reference_runner.phases import POST_DOWNLOAD, PRE_ENGINE_INIT


def pin_engine_args(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    """Add the team's engine arguments to whatever other callbacks asked for."""
    if phase == PRE_ENGINE_INIT:
        return {"extra_init_kwargs": {**data.get("extra_init_kwargs", {}), "enforce_eager": True}}
    return None


class ReservedPlacement:
    """Build the placement group from the config: one GPU bundle per device, packed on one
    node (counts how many times it did, for the team's dashboards)."""

    def __init__(self, strategy: str = "STRICT_PACK") -> None:
        self.strategy = strategy
        self.groups_built = 0

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if phase == POST_DOWNLOAD:
            self.groups_built += 1
            bundles = [{"GPU": 1, "CPU": 1}] * config.num_devices
            return {"placement_group": placement_group(bundles, strategy=self.strategy)}
        return None
