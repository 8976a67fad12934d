"""Resource arithmetic in Ray's fixed-point units, and GPU instance allocation.

Ray keeps resource quantities as integers of 1/10000 of a unit, so ``1 - 0.001`` is exactly
``0.999`` and fractional GPUs add up without drift. The fake does the same: a
:data:`Units` mapping holds ``round(quantity * 10000)`` per resource name.

GPUs are also tracked per device ("instances"), as Ray does, so whole-GPU requests get
whole free devices (lowest index first) and fractional requests share one device. That is
what makes ``CUDA_VISIBLE_DEVICES`` and ``ray.get_gpu_ids()`` come out as on a real node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

# The unit arithmetic is shared with the live placement pre-check (one rule for both).
from reference_runner.placement_feasibility import SCALE as SCALE
from reference_runner.placement_feasibility import Units as Units
from reference_runner.placement_feasibility import to_units as to_units

GPU: Final = "GPU"
#: A GPU allocation: (device index, units taken from it).
GpuAlloc = list[tuple[int, int]]


def from_units(units: Mapping[str, int]) -> dict[str, float]:
    """The inverse of :func:`to_units` (quantities as floats, as Ray reports them)."""
    return {name: value / SCALE for name, value in units.items()}


def fits(available: Mapping[str, int], demand: Mapping[str, int]) -> bool:
    """True when every positive quantity of ``demand`` is available."""
    for name, need in demand.items():  # noqa: SIM110 - hot path: a loop beats all(genexpr)
        if need > 0 and available.get(name, 0) < need:
            return False
    return True


def subtract(available: Units, demand: Mapping[str, int]) -> None:
    for name, need in demand.items():
        available[name] = available.get(name, 0) - need


def add(available: Units, demand: Mapping[str, int]) -> None:
    for name, need in demand.items():
        available[name] = available.get(name, 0) + need


def total_of(demands: Iterable[Mapping[str, int]]) -> Units:
    out: Units = {}
    for demand in demands:
        add(out, demand)
    return out


def gpu_fits(devices: list[int], units: int) -> bool:
    """Can ``units`` of GPU be taken from ``devices`` (free units per device)?"""
    return allocate_gpus(devices, units, dry_run=True) is not None


def allocate_gpus(devices: list[int], units: int, *, dry_run: bool = False) -> GpuAlloc | None:
    """Take ``units`` of GPU from ``devices`` as Ray would, or return ``None``.

    Whole GPUs take that many fully free devices, lowest index first; a fraction takes the
    first device with enough left; ``1.5`` takes one whole device and half of another.
    ``devices`` is changed in place unless ``dry_run``.
    """
    if units <= 0:
        return []
    whole, fraction = divmod(units, SCALE)
    taken: GpuAlloc = []
    used: set[int] = set()
    if whole:
        for index, free in enumerate(devices):
            if free == SCALE:
                taken.append((index, SCALE))
                used.add(index)
                if len(taken) == whole:
                    break
        if len(taken) < whole:
            return None
    if fraction:
        for index, free in enumerate(devices):
            if index not in used and free >= fraction:
                taken.append((index, fraction))
                break
        else:
            return None
    if not dry_run:
        for index, amount in taken:
            devices[index] -= amount
    return taken


def release_gpus(devices: list[int], alloc: GpuAlloc) -> None:
    for index, amount in alloc:
        if index < len(devices):
            devices[index] += amount


def gpu_ids(alloc: GpuAlloc) -> list[int]:
    """The device indices of an allocation, sorted (what ``ray.get_gpu_ids()`` returns)."""
    return sorted({index for index, _ in alloc})


def format_resources(units: Mapping[str, int], *, hide_internal: bool = True) -> str:
    """``{CPU: 2, GPU: 8}`` for messages; node/memory bookkeeping keys are hidden."""
    shown = {
        k: v
        for k, v in sorted(units.items())
        if not hide_internal
        or not (k.startswith("node:") or k in ("memory", "object_store_memory") or "_group_" in k)
    }
    if not shown:
        return "{}"
    return "{" + ", ".join(f"{k}: {v / SCALE:g}" for k, v in shown.items()) + "}"
