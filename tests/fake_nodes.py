"""Fake cluster nodes and bundles for placement tests, built directly from the fake's model
(no engine): shared by the fake's placement properties and the placement pre-check's."""

from __future__ import annotations

from pytest_raycallbacks.fake_ray.model import Bundle, Node
from pytest_raycallbacks.fake_ray.placement import full_gpu_capacity
from pytest_raycallbacks.fake_ray.resources import SCALE, to_units


def make_node(
    index: int,
    cpus: int,
    gpus: int,
    used_cpus: int = 0,
    used_gpus: int = 0,
) -> Node:
    """Node ``index`` (0 is the head) with ``cpus`` CPUs and ``gpus`` whole GPUs, of which
    ``used_cpus`` / ``used_gpus`` are taken; no labels."""
    total = to_units({"CPU": cpus, "GPU": gpus})
    capacity = full_gpu_capacity(gpus)
    free_devices = [0 if i < used_gpus else d for i, d in enumerate(capacity)]
    return Node(
        index=index,
        node_id=f"{index:056x}",
        name=f"n{index}",
        ip=f"10.0.0.{index}",
        is_head=index == 0,
        total=total,
        avail={"CPU": total.get("CPU", 0) - used_cpus * SCALE, "GPU": sum(free_devices)},
        gpus=free_devices,
        gpu_capacity=capacity,
        labels={},
        env={},
    )


def make_bundle(index: int, cpus: float, gpus: float) -> Bundle:
    """Bundle ``index`` asking for ``cpus`` CPUs and ``gpus`` GPUs (zeros left out)."""
    spec = {k: v for k, v in (("CPU", cpus), ("GPU", gpus)) if v}
    return Bundle(index=index, demand=to_units(spec), spec=spec)
