"""Fixtures of the fake cluster's tests.

``differential_ray_cluster`` is the real Ray cluster the differential scenarios run
against. It is the one place to swap for the shared session cluster (``gpu_ray_cluster``):
the scenarios only need ``ray`` connected to a multi-node cluster with logical GPUs (a head
and at least two GPU nodes of at least two GPUs each, idle).

* If the driver is already connected to a Ray cluster (say ``gpu_ray_cluster`` started
  earlier in the session), that cluster is used as it is, when it has that shape.
* Otherwise it starts the reference topology with ``ray.cluster_utils.Cluster`` -- a head
  with 2 CPUs, and two nodes of 2 CPUs and 2 logical GPUs, the first also with
  ``accelerator_type:A100`` (4 logical GPUs in all) -- under a private ``RAY_TMPDIR``,
  connects, and tears all of it down (driver, every node it started, its temp folder)
  after the module that uses it, so a later session cluster can connect.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def differential_ray_cluster() -> Iterator[RealCluster]:
    """A real multi-node Ray cluster with logical GPUs (see the module doc)."""
    import ray

    if ray.is_initialized():
        nodes = ray.nodes()
        problem = _suitable(nodes)
        if problem:
            pytest.skip(
                f"the connected Ray cluster does not fit the differential scenarios: {problem}"
            )
        yield RealCluster(address="(already connected)", nodes=nodes, owned=False)
        return

    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="rcb-fake-diff-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "CUDA_VISIBLE_DEVICES")}
    os.environ["RAY_TMPDIR"] = temp
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # logical GPUs must not be masked
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 2, "include_dashboard": False},
        )
        cluster.add_node(num_cpus=2, num_gpus=2, resources={"accelerator_type:A100": 1})
        cluster.add_node(num_cpus=2, num_gpus=2)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        yield RealCluster(address=cluster.address, nodes=ray.nodes(), owned=True)
    finally:
        try:
            if ray.is_initialized():
                ray.shutdown()
        finally:
            if cluster is not None:
                cluster.shutdown()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            shutil.rmtree(temp, ignore_errors=True)
