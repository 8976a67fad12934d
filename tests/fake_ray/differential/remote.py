# mypy: disable-error-code="no-untyped-call,no-any-return"
# (Ray's public functions are untyped; scenarios return what Ray returns.)
"""Task bodies and the actor of the differential scenarios.

They live in a module of their own that Ray workers import by name
(``tests.fake_ray.differential.remote``; workers get the driver's working directory, the
repository root, on their path). The module path shows in error messages, and so in the
recorded outcomes.
"""

from __future__ import annotations

import os
from typing import Any

import ray


class ScenarioError(Exception):
    """Raised inside tasks by the exception scenarios (importable by Ray workers)."""


@ray.remote
def where_am_i() -> dict[str, Any]:
    """Task body: where it runs and what it was given."""
    ctx = ray.get_runtime_context()
    current = ray.util.get_current_placement_group()
    return {
        "node": ctx.get_node_id(),
        "gpu_ids": [int(i) for i in ray.get_gpu_ids()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "placement_group": ctx.get_placement_group_id(),
        "current_group": None if current is None else current.id.hex(),
        "assigned": ctx.get_assigned_resources(),
        "env_foo": os.environ.get("RAYCALLBACKS_DIFF_FOO"),
    }


@ray.remote
def raise_scenario_error(message: str) -> None:
    raise ScenarioError(message)


@ray.remote
def raise_key_error() -> Any:
    empty: dict[str, Any] = {}
    return empty["missing"]


@ray.remote
def add_one(x: int) -> int:
    return x + 1


@ray.remote
class ScenarioActor:
    """An actor with state, to compare actor behaviour."""

    def __init__(self, start: int) -> None:
        self.value = start

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def devices(self) -> tuple[list[int], str | None]:
        return [int(i) for i in ray.get_gpu_ids()], os.environ.get("CUDA_VISIBLE_DEVICES")
