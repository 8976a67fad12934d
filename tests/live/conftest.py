"""Fixtures and helpers of the live-cluster tests (``gpu_ray_cluster``).

All live tests share the session's cluster (one process drives one Ray cluster); the
``cluster`` fixture wraps each test in a leak check, so a test that leaves a placement group
or actor behind fails (and its leftovers are removed before the next test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def cluster(gpu_ray_cluster: Any) -> Iterator[Any]:
    """The session cluster, with a leak check around the test."""
    with gpu_ray_cluster.leak_check():
        yield gpu_ray_cluster


@pytest.fixture
def simulated(cluster: Any) -> Any:
    """The session cluster when it simulates its GPUs (add/remove node need that)."""
    if cluster.mode != "simulate":
        pytest.skip(f"needs a simulated cluster; this session's is {cluster.mode}")
    return cluster
