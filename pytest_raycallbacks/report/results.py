"""What each conformance item did, gathered from pytest's reports.

Items are planned from the settings alone (spec x check x where), so the controller of a
``pytest-xdist`` run, which collects nothing itself, knows what should have run. Each
report of a conformance item carries a ``raycallbacks`` attribute (a JSON-able dict, which
xdist ships from its workers); :class:`Results` turns reports into one outcome per item:
``passed``, ``failed``, ``skipped``, ``waived``, or ``not run``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import pytest

PASSED: Final = "passed"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
WAIVED: Final = "waived"
NOT_RUN: Final = "not run"


@dataclass(frozen=True)
class ItemPlan:
    """One conformance item: ``check`` for ``spec`` on ``where`` (local, fake or live)."""

    check: str
    spec: str
    where: str

    @property
    def name(self) -> str:
        """The test name: ``merge.ownership[mymod.cb-fake]`` (-k sees all three parts)."""
        return f"{self.check}[{self.spec}-{self.where}]"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.spec, self.check, self.where)


PLAN_KEY: Final = pytest.StashKey[ItemPlan]()
RECORD_KEY: Final = pytest.StashKey[dict[str, Any]]()


def plan_items(specs: Iterable[str], clusters: tuple[str, ...]) -> list[ItemPlan]:
    """Every item the settings ask for, in catalogue order per spec: the checks that apply
    to the spec's style (a ``(phase, config, data)`` callback or a Ray ``CallbackBase``
    subclass; telling which imports the spec, so its folder must be on ``sys.path``)."""
    from conformance import checks_for, style_of

    return [
        ItemPlan(check.id, spec, where)
        for spec in specs
        for check in checks_for(style_of(spec))
        for where in check.locations(clusters)
    ]


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
        plan = ItemPlan(record["check"], record["spec"], record["where"])
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


def verdict(entries: Iterable[Entry]) -> str:
    """``rejected`` if any check failed, ``incomplete`` if one was skipped or did not run,
    else ``certified``."""
    outcomes = [e.outcome for e in entries]
    if FAILED in outcomes:
        return "rejected"
    if SKIPPED in outcomes or NOT_RUN in outcomes or not outcomes:
        return "incomplete"
    return "certified"
