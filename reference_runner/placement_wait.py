"""Waiting, bounded, for a placement group to be placed, and not waiting when it never will.

:func:`wait_placed` is how ``initialize_node`` serves a group (docs/design.md §Clusters):

1. the pre-check: the group's bundles and strategy against the alive nodes' total
   resources (:func:`reference_runner.placement_feasibility.why_never_placed`, the rule the
   fake cluster also uses). When the group fits, or the pre-check cannot read the cluster,
   the wait is the plain bounded one;
2. a group that can never be placed on a cluster that cannot grow
   (:func:`reference_runner.cluster_growth.probe_growth` says ``fixed``) raises
   :class:`PlacementGroupInfeasibleError` at once, instead of waiting out the bound;
3. where the cluster may grow (an autoscaler), the wait goes on up to the bound, and the
   timeout says why it waited; where that is not known yet (``unknown``), the wait goes on
   in slices of :data:`RECHECK_S`, asking again after each, so a just-started cluster's
   monitor is heard as soon as it reports.

The messages are the same on every cluster (fake or live): they name the group, its bundles
and strategy, why it does not fit, and the cluster's total and available resources.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

from .cluster_growth import Growth, probe_growth
from .errors import PlacementGroupTimeoutError
from .placement_feasibility import NodeCapacity, format_resources, why_never_placed

#: How often an ``unknown`` verdict is asked again while waiting.
RECHECK_S: Final = 1.0
_FIX: Final = (
    "Ask for fewer resources per bundle, fewer bundles or a looser strategy, or add nodes."
)


class PlacementGroupInfeasibleError(PlacementGroupTimeoutError):
    """A placement group can never be placed on the cluster, which cannot grow: raised at
    once instead of waiting out the bound (a :class:`PlacementGroupTimeoutError`, so code
    that handles a timed-out group handles this one too).

    The message names the bundles and strategy asked for, why no node arrangement holds
    them, what the cluster has, and why it cannot grow.
    """


@dataclass(frozen=True)
class _Never:
    """A group that can never be placed on the nodes there are now, and why."""

    reason: str
    growth: Growth


async def wait_placed(ray: Any, group: Any, timeout_s: float) -> None:
    """Return once ``group`` is placed; raise :class:`PlacementGroupInfeasibleError` at once
    when it never will be on a cluster that cannot grow, else
    :class:`PlacementGroupTimeoutError` after ``timeout_s`` (see the module doc)."""
    deadline = time.monotonic() + timeout_s
    never = await asyncio.to_thread(_precheck, ray, group)
    if never is not None and never.growth.fixed:
        raise PlacementGroupInfeasibleError(_infeasible_message(ray, group, never, timeout_s))
    if never is None or never.growth.verdict == "grows":
        if await asyncio.to_thread(group.wait, timeout_s):
            return
    else:
        while (left := deadline - time.monotonic()) > 0:
            if await asyncio.to_thread(group.wait, min(RECHECK_S, left)):
                return
            growth = await asyncio.to_thread(probe_growth, ray)
            never = _Never(never.reason, growth)
            if growth.fixed:
                raise PlacementGroupInfeasibleError(
                    _infeasible_message(ray, group, never, timeout_s)
                )
    raise PlacementGroupTimeoutError(_timeout_message(ray, group, never, timeout_s))


def _precheck(ray: Any, group: Any) -> _Never | None:
    """Why ``group`` can never be placed on the alive nodes (``None``: it can, or the
    cluster could not be read), with the cluster's growth verdict."""
    try:
        table = ray.util.placement_group_table(group)
        if table.get("state") == "CREATED":
            return None
        bundles = [dict(b) for b in group.bundle_specs]
        strategy = str(table.get("strategy"))
        nodes = [
            NodeCapacity(
                node_id=str(raw.get("NodeID", "")),
                resources={str(k): float(v) for k, v in (raw.get("Resources") or {}).items()},
                labels={str(k): str(v) for k, v in (raw.get("Labels") or {}).items()},
            )
            for raw in ray.nodes()
            if raw.get("Alive")
        ]
        reason = why_never_placed(bundles, strategy, nodes)
    except Exception:  # the pre-check only saves time: without it, the plain wait
        return None
    if reason is None:
        return None
    return _Never(reason, probe_growth(ray))


def _described(ray: Any, group: Any) -> tuple[str, str, str, str]:
    bundles = _safe(lambda: group.bundle_specs, "?")
    strategy = _safe(lambda: ray.util.placement_group_table(group).get("strategy"), "?")
    total = _safe(lambda: format_resources(ray.cluster_resources()), "{}")
    available = _safe(lambda: format_resources(ray.available_resources()), "{}")
    return str(bundles), str(strategy), total, available


def _infeasible_message(ray: Any, group: Any, never: _Never, timeout_s: float) -> str:
    bundles, strategy, total, available = _described(ray, group)
    return (
        f"placement group {getattr(group, 'id', group)} can never be placed: it asks for "
        f"bundles {bundles} with strategy {strategy}, but {never.reason}. The cluster has "
        f"{total} in total and {available} available, and it cannot grow "
        f"({never.growth.reason}), so it was not waited for (the bound was {timeout_s:g} s). "
        + _FIX
    )


def _timeout_message(ray: Any, group: Any, never: _Never | None, timeout_s: float) -> str:
    bundles, strategy, total, available = _described(ray, group)
    why = (
        f" It can never be placed on the nodes the cluster has now ({never.reason}); it was "
        f"waited for because the cluster may grow: {never.growth.reason}."
        if never is not None and never.growth.verdict == "grows"
        else f" It can never be placed on the nodes the cluster has now ({never.reason}); "
        f"it was waited for because it is not known whether the cluster can grow: "
        f"{never.growth.reason}."
        if never is not None
        else ""
    )
    return (
        f"placement group {getattr(group, 'id', group)} was not ready after {timeout_s:g} s: "
        f"it asks for bundles {bundles} with strategy {strategy}, but the cluster has "
        f"{total} in total and {available} available.{why} " + _FIX
    )


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:
        return default
