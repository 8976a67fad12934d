"""Placement of a group's bundles onto the fake cluster's nodes.

The policies themselves (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD, largest bundle first, GPUs
per device, label selectors) are :mod:`reference_runner.placement_plan`'s, the planner
``initialize_node`` also uses to tell a group that can never be placed
(:mod:`reference_runner.placement_feasibility`); this module applies it to the fake's
:class:`~.model.Node` objects. :func:`plan` places on what the alive nodes have available
now, or with ``use_totals=True`` on their total resources: that tells a group that waits for
resources (``NO_RESOURCES``) from one no node could ever hold (``INFEASIBLE``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reference_runner.placement_plan import bundle_order, full_gpu_capacity, label_match
from reference_runner.placement_plan import plan as plan_on

from .model import Bundle, Node

__all__ = ["Plan", "bundle_order", "full_gpu_capacity", "label_match", "plan"]

Plan = list[Node]


def _available(node: Node) -> tuple[Mapping[str, int], list[int]]:
    return node.avail, node.gpus


def _totals(node: Node) -> tuple[Mapping[str, int], list[int]]:
    return node.total, node.gpu_capacity


def plan(
    bundles: Sequence[Bundle],
    strategy: str,
    nodes: Sequence[Node],
    *,
    use_totals: bool = False,
    soft_target_node_id: str | None = None,
) -> Plan | None:
    """The alive node for each bundle (by bundle index), or ``None`` if it cannot be placed
    (on what is available now, or with ``use_totals`` on the nodes' totals)."""
    alive = [n for n in nodes if n.alive]
    return plan_on(
        bundles,
        strategy,
        alive,
        _totals if use_totals else _available,
        soft_target_node_id=soft_target_node_id,
    )
