"""What each conformance item did, gathered from pytest's reports.

Each report of a conformance item carries a ``raycallbacks`` attribute (the item's record,
see :mod:`pytest_raycallbacks.kit.plan`; a JSON-able dict, which xdist ships from its
workers); :class:`Results` turns reports into one outcome per planned item: ``passed``,
``failed``, ``skipped``, ``waived``, ``inconclusive`` (what the check needs is missing
here), or ``not run`` (no report: deselected or never reached;
or a report whose record says ``not run``, with the reason in ``detail``: the callback was
halted, or the run reached its bound). :func:`verdict` turns a callback's outcomes into its
verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import pytest

from pytest_raycallbacks.kit.plan import ItemPlan

PASSED: Final = "passed"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
WAIVED: Final = "waived"
NOT_RUN: Final = "not run"
#: The check could not judge the callback here: what it needs is missing from this
#: environment (a package, the network); ``record["inconclusive"]`` says what and where.
INCONCLUSIVE: Final = "inconclusive"
#: The outcomes, in the order the summary and the certificate count them.
OUTCOMES: Final = (PASSED, FAILED, SKIPPED, WAIVED, NOT_RUN, INCONCLUSIVE)


@dataclass
class Entry:
    """The outcome of one item, as the certificate and the summary show it."""

    plan: ItemPlan
    outcome: str = NOT_RUN
    detail: str | None = None
    failure: dict[str, str] | None = None
    waiver: str | None = None
    stale_waiver: bool = False
    duration_s: float = 0.0
    record: dict[str, Any] | None = None


class Results:
    """One :class:`Entry` per planned item, updated from reports as they arrive."""

    def __init__(self, plans: Iterable[ItemPlan]) -> None:
        self.entries: dict[tuple[str, str, str], Entry] = {p.key: Entry(p) for p in plans}

    def add(self, report: pytest.TestReport) -> None:
        """Fold one report (setup, call or teardown) of a conformance item in."""
        record: dict[str, Any] | None = getattr(report, "raycallbacks", None)
        if not record:
            return
        plan = ItemPlan.of_record(record)
        entry = self.entries.setdefault(plan.key, Entry(plan))
        entry.duration_s += float(getattr(report, "duration", 0.0) or 0.0)
        if record.get("outcome") is not None or entry.record is None:
            entry.record = record
        if report.when == "call" or (report.when == "setup" and not report.passed):
            _apply(entry, report, record)
        elif report.when == "teardown" and report.failed:
            entry.outcome = FAILED
            entry.detail = f"teardown failed: {_last_line(report)}"

    def for_spec(self, spec: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.plan.spec == spec]


def _apply(entry: Entry, report: pytest.TestReport, record: dict[str, Any]) -> None:
    entry.waiver = record.get("waiver")
    if report.passed:
        entry.outcome = PASSED
        entry.detail = record.get("note")
        entry.stale_waiver = bool(record.get("stale_waiver"))
    elif report.skipped and record.get("outcome") == INCONCLUSIVE:
        entry.outcome = INCONCLUSIVE  # what the check needs is missing here
        entry.detail = record.get("note")
    elif report.skipped and record.get("outcome") == NOT_RUN:
        entry.outcome = NOT_RUN  # the kit did not run it, and says why (a halt, the bound)
        entry.detail = record.get("note")
    elif report.skipped and hasattr(report, "wasxfail"):
        entry.outcome = WAIVED
        entry.failure = record.get("failure")
        entry.detail = None
    elif report.skipped:
        entry.outcome = SKIPPED
        entry.detail = _skip_reason(report)
    else:
        entry.outcome = FAILED
        entry.failure = record.get("failure")
        if entry.failure is None:  # not a broken rule: the check (or its setup) crashed
            stage = "setup" if report.when == "setup" else "the check"
            entry.detail = f"{stage} raised: {_last_line(report)}"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return _last_line(report)


def _last_line(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[-1][2:].strip() if errors else lines[-1].strip()) if lines else "no details"


def counts(entries: Iterable[Entry]) -> dict[str, int]:
    """How many entries have each outcome (every outcome present, in :data:`OUTCOMES` order)."""
    counted = dict.fromkeys(OUTCOMES, 0)
    for entry in entries:
        counted[entry.outcome] += 1
    return counted


def clusters_of(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The descriptions (``record["cluster_description"]``) of the clusters the entries ran
    on, one per cluster, in the order they were first used."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        description = (entry.record or {}).get("cluster_description")
        if description:
            seen.setdefault(str(description.get("name")), description)
    return list(seen.values())


def verdict(entries: Iterable[Entry]) -> str:
    """``rejected`` if any check failed, ``inconclusive`` if one could not judge the callback
    in this environment, ``incomplete`` if one was skipped or did not run, else
    ``certified``."""
    outcomes = [e.outcome for e in entries]
    if FAILED in outcomes:
        return "rejected"
    if INCONCLUSIVE in outcomes:
        return "inconclusive"
    if SKIPPED in outcomes or NOT_RUN in outcomes or not outcomes:
        return "incomplete"
    return "certified"
