"""The ``raycallbacks-chain`` plugin: the chain item's reports, its verdict, its results.

:class:`ChainPlugin` is registered by the kit with ``--raycallbacks-chain``. It collects the
chain item (:mod:`.item`), attaches the item's record to its reports (also from xdist
workers), and keeps the record and the item's outcome for the summary
(:meth:`ChainPlugin.summary_lines`) and the certificate (:meth:`ChainPlugin.certificate_entry`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final

import pytest

from pytest_raycallbacks.report.results import FAILED, NOT_RUN, PASSED, SKIPPED

from . import text
from .item import CHAIN_KEY, ChainRun, ChainServices, collect_chain

PLUGIN_NAME: Final = "raycallbacks-chain"


class ChainPlugin:
    """The chain of ``specs`` (in that order); ``services`` is the kit, which the chain item
    asks for the callbacks, the settings and the fake cluster."""

    def __init__(self, specs: tuple[str, ...], services: ChainServices) -> None:
        self.specs = specs
        self._run = ChainRun(specs, services)
        self.outcome = NOT_RUN
        self.record: dict[str, Any] = {"specs": list(specs)}
        self.detail: str | None = None

    def collect(self, session: pytest.Session) -> list[pytest.Item]:
        """The chain item (see :func:`.item.collect_chain`)."""
        return collect_chain(session, self._run)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        if CHAIN_KEY in item.stash:
            record: dict[str, Any] = item.stash[CHAIN_KEY]
            report.raycallbacks_chain = dict(record)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "raycallbacks_chain", None)
        if record is None:
            return
        self.record = record
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                self.outcome = PASSED
            elif report.skipped:
                self.outcome = SKIPPED
                self.detail = record.get("skipped")
            else:
                self.outcome = FAILED
                if "verdict" not in record:
                    lines = [ln for ln in report.longreprtext.splitlines() if ln.strip()]
                    self.detail = f"the chain check raised: {lines[-1] if lines else '?'}"
        elif report.when == "teardown" and report.failed:
            self.outcome = FAILED

    @property
    def verdict(self) -> str:
        if self.outcome == FAILED:
            return "rejected"
        if self.outcome == PASSED:
            return str(self.record.get("verdict", "certified"))
        return "incomplete"

    def certificate_entry(self) -> dict[str, Any]:
        """The certificate's ``chain`` object."""
        entry = {
            "specs": list(self.specs),
            "verdict": self.verdict,
            "collisions": [],
            "order_dependent": None,
            "orders_tried": [],
            "differences": [],
        }
        entry.update({k: v for k, v in self.record.items() if k != "skipped"})
        entry["verdict"] = self.verdict
        entry["outcome"] = self.outcome
        entry["detail"] = self.detail
        return entry

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        """The summary's block for the chain."""
        markup = {"certified": {"green": True}, "rejected": {"red": True}}
        verdict = self.verdict
        head = f"chain {' -> '.join(self.specs)}: {verdict.upper()}"
        lines = [(head, {"bold": True, **markup.get(verdict, {"yellow": True})})]
        if "verdict" not in self.record:
            reason = self.detail or "the chain check did not run (deselected, or stopped early)"
            return [*lines, (f"    {reason}", {"yellow": True})]
        return lines + text.summary_lines(self.record)
