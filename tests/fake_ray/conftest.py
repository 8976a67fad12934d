"""Fixtures of the fake cluster's tests.

``differential_ray_cluster`` is the real Ray cluster the differential scenarios run
against: the session's live cluster (``gpu_ray_cluster``; in simulate mode a head and two
nodes of 2 logical GPUs, the first tagged ``accelerator_type:A100``). The scenarios only need
``ray`` connected to a multi-node cluster with logical GPUs (a head and at least two GPU nodes
of at least two GPUs each, idle); when the session's cluster has another shape (a physical
machine, a custom ``RAYCALLBACKS_SIMULATE_NODES``, an existing cluster) they skip, saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class RealCluster:
    """The connected real cluster: ``nodes`` is ``ray.nodes()`` at start; ``owned`` says
    whether this fixture started it."""

    address: str
    nodes: list[dict[str, Any]]
    owned: bool


def _suitable(nodes: list[dict[str, Any]]) -> str | None:
    alive = [n for n in nodes if n.get("Alive")]
    gpu_nodes = [n for n in alive if n["Resources"].get("GPU", 0) >= 2]
    if not any("node:__internal_head__" in n["Resources"] for n in alive):
        return "no head node"
    if len(gpu_nodes) < 2:
        return f"needs >= 2 nodes with >= 2 GPUs, found {len(gpu_nodes)}"
    return None


@pytest.fixture(scope="session")
def differential_ray_cluster(gpu_ray_cluster: Any) -> RealCluster:
    """The session's real multi-node Ray cluster with logical GPUs (see the module doc).

    Ray is reached through the handle, which reconnects the driver when an earlier test of
    the session disconnected it (``ray.shutdown()`` is a legitimate thing for a test to do).
    """
    nodes = gpu_ray_cluster.ray.nodes()
    problem = _suitable(nodes)
    if problem:
        pytest.skip(f"the session's Ray cluster does not fit the differential scenarios: {problem}")
    return RealCluster(address=gpu_ray_cluster.address, nodes=nodes, owned=False)
