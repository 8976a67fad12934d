"""The worst case a conformance run can take, stated before it starts.

:func:`run_bound` adds up, from the settings and the planned items alone, the longest each
part of the run may take when every piece of user code takes as long as its bound allows
(docs/design.md §Bounds on user code):

* ``admission``: the configure-time import probes (all specs at once), the probe server's
  start included;
* per callback: importing it in the test process (the import limit), its fresh-interpreter
  probe, one bounded call (a constructor) per check on the driver, and per cluster
  :data:`SCENARIO_RUNS` ``initialize_node`` runs of six calls each, one run with the unknown
  phase names and one run without the callback per fault, each at
  :func:`conformance.bounds.scenario_bound_s`; on the live cluster also one run inside a Ray
  worker per live check;
* ``chain``: one run per order tried (``--raycallbacks-chain``);
* ``cluster start``: the live cluster's start timeout (the fake cluster starts inside each
  run, counted there);
* ``finish``: :data:`FINISH_S` kept for ending the session (never handed to a check), and
  :data:`ITEM_OVERHEAD_S` per item for pytest's own work around it.

The kit enforces it with a :class:`~conformance.bounds.RunBudget`: a check, or a scenario
inside one, that could overrun what is left is not started and is recorded as not run
("the run reached its bound of N s"), so the run ends within the bound and the certificate
is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from conformance.bounds import RunBudget

    from .plan import ItemPlan
    from .settings import KitSettings

#: ``initialize_node`` runs of six calls a callback gets per cluster: two lifecycles, one per
#: fault, and room for runs checks add later (the runs without the callback, one per fault,
#: are counted apart: they run none of its code).
SCENARIO_RUNS: Final = 6
#: Phase names besides the generated ones that ``phases.unknown-names`` may add to its run.
UNKNOWN_NAMES_ALLOWANCE: Final = 16
#: Longest a live check's run inside a Ray worker may take, beyond 4x the timeout.
LIVE_WORKER_RUN_S: Final = 60.0
#: pytest's own work around each item (fixtures, reports, the coverage measurement).
ITEM_OVERHEAD_S: Final = 0.5
#: Kept for ending the session: the certificate, the summary, the clusters' teardown.
FINISH_S: Final = 10.0


@dataclass(frozen=True)
class RunBound:
    """The stated worst case: ``bound_s`` and what it is made of (``parts``, in seconds)."""

    bound_s: float
    parts: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"bound_s": self.bound_s, "parts": dict(self.parts)}


def run_bound(
    settings: KitSettings, plans: Iterable[ItemPlan], *, import_limit_s: float
) -> RunBound:
    """The worst case of a run of ``plans`` (see the module docstring)."""
    from conformance.bench import PLACEMENT_WAIT_S
    from conformance.bounds import (
        PHASE_CALLS,
        call_bound_s,
        probe_bound_s,
        scenario_bound_s,
    )
    from conformance.cluster_api import FAULTS
    from conformance.context import Settings

    timeout = settings.timeout_s
    placement = min(PLACEMENT_WAIT_S, timeout)
    download = max(timeout, placement)
    unknown = Settings().unknown_phase_names + UNKNOWN_NAMES_ALLOWANCE

    def scenario(calls: int) -> float:
        return scenario_bound_s(timeout, placement, download, calls=calls)

    planned = list(plans)
    parts: dict[str, float] = {"admission": probe_bound_s(import_limit_s, timeout, startup=True)}
    for spec in settings.specs:
        mine = [p for p in planned if p.spec == spec]
        clusters = {p.cluster for p in mine} - {"local"}
        local = sum(1 for p in mine if p.cluster == "local")
        total = (
            import_limit_s + probe_bound_s(import_limit_s, timeout) + local * call_bound_s(timeout)
        )
        total += len(mine) * ITEM_OVERHEAD_S
        for _cluster in clusters:
            total += SCENARIO_RUNS * scenario(PHASE_CALLS) + scenario(PHASE_CALLS + unknown)
            total += len(FAULTS) * scenario(0)
        live_items = sum(1 for p in mine if p.cluster == "live")
        total += live_items * max(4 * timeout, LIVE_WORKER_RUN_S)
        parts[spec] = total
    if settings.chain:
        parts["chain"] = chain_bound_s(settings.specs, timeout)
    if "live" in settings.clusters:
        from pytest_raycallbacks.live.config import config_from_env

        parts["cluster start"] = config_from_env().start_timeout_s
    parts["finish"] = FINISH_S
    rounded = {name: round(seconds, 1) for name, seconds in parts.items()}
    return RunBound(bound_s=float(round(sum(parts.values()))), parts=rounded)


def chain_bound_s(specs: tuple[str, ...], timeout_s: float) -> float:
    """Longest the chain check can take: one run per order it tries (the given one and
    :func:`conformance.chain.orders`), each with six calls of every callback."""
    from conformance.bench import PLACEMENT_WAIT_S
    from conformance.bounds import PHASE_CALLS, scenario_bound_s
    from conformance.chain import orders

    placement = min(PLACEMENT_WAIT_S, timeout_s)
    runs = 1 + len(orders(specs))
    calls = PHASE_CALLS * len(specs)
    return runs * scenario_bound_s(timeout_s, placement, max(timeout_s, placement), calls=calls)


class RunClock:
    """The kit's plugin that keeps the budget's clock to the kit's own work: the time other
    tests of the session take (items outside the ``raycallbacks`` collector) is excluded."""

    def __init__(self, budget: RunBudget) -> None:
        self.budget = budget

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        from .collection import SUITE_NAME

        if item.nodeid.startswith(f"{SUITE_NAME}::"):
            return (yield)
        start = time.monotonic()
        try:
            return (yield)
        finally:
            self.budget.exclude(time.monotonic() - start)


def bound_line(bound: RunBound, budget: RunBudget) -> str:
    """The summary's line: ``worst case for this run: 812 s (took 9 s)``, saying so when
    the run reached it."""
    line = f"worst case for this run: {bound.bound_s:g} s (took {budget.elapsed_s():.0f} s)"
    if budget.reached:
        line += f"; {budget.reason.removeprefix('not run: ')}: the checks after it did not run"
    return line
