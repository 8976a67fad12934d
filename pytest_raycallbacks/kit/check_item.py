"""Running one conformance item: the check, its waiver, its record.

:class:`CheckRun` is what the ``raycallbacks_check`` fixture gives an item. ``run()``
builds the check's context (the callback, the cluster, the settings), runs the check and
turns the outcome into pytest's: a broken rule fails with the check's message (no
traceback: the message says what was expected, what happened and how to fix it); a waived
failure is an ``xfail``; a check that cannot judge is a skip; a waived check that passes
warns with :class:`StaleWaiverWarning`. Everything is also written to the item's record,
which the certificate and the summary read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .waivers import Waiver, find_waiver

if TYPE_CHECKING:
    from conformance import Check, CheckFailed, Cluster, Subject

    from .plan import ItemPlan
    from .session import Kit


class StaleWaiverWarning(pytest.PytestWarning):
    """A waived conformance check passes: drop the waiver."""


@dataclass
class CheckRun:
    """One check for one callback on one cluster, ready to :meth:`run`."""

    kit: Kit
    plan: ItemPlan
    request: pytest.FixtureRequest
    record: dict[str, Any]
    cluster: Cluster | None = None

    @classmethod
    def prepare(
        cls, kit: Kit, plan: ItemPlan, record: dict[str, Any], request: pytest.FixtureRequest
    ) -> CheckRun:
        """The run of ``plan``'s check, with its cluster started (at setup, so that starting
        the live cluster counts, and fails, as setup; not for a callback that does not load:
        its checks are skipped and need no cluster)."""
        from conformance import get_check

        run = cls(kit, plan, request, record)
        if _loads(kit.subject(plan.spec)) or not get_check(plan.check).needs_callback:
            run.cluster = kit.cluster(plan.cluster, request)
        return run

    def run(self) -> None:
        from conformance import (
            CheckContext,
            CheckFailed,
            CheckSkipped,
            get_check,
            start_probe_early,
        )

        check = get_check(self.plan.check)
        subject = self.kit.subject(self.plan.spec)
        self.record["subject"] = {
            **subject.source,
            "kind": _kind(subject),
            "style": subject.style,
        }
        if check.needs_callback and not _loads(subject):
            self._skip(_why_not_loaded(subject))
        cluster = self.cluster
        if cluster is not None:
            self.record["cluster_description"] = cluster.describe()
        settings = self.kit.check_settings(self.request.getfixturevalue("tmp_path_factory"))
        ctx = CheckContext(
            subject=subject,
            settings=settings,
            cluster=cluster,
            bench=self.kit.bench(subject, cluster, settings) if cluster is not None else None,
        )
        start_probe_early(ctx)
        waiver = find_waiver(self.kit.settings.waivers, check.id, self.plan.spec)
        if waiver is not None:
            self.record["waiver"] = waiver.reason
        failure: CheckFailed | None = None
        note: str | None = None
        try:
            note = check.function(ctx)
        except CheckFailed as exc:
            failure = exc
        except CheckSkipped as skipped:
            self._skip(str(skipped))
        if failure is not None:
            self._fail(check, failure, waiver)
        self.record.update(outcome="passed", note=note)
        if waiver is not None:
            self.record["stale_waiver"] = True
            warnings.warn(
                StaleWaiverWarning(
                    f"{check.id} passes for {self.plan.spec} [{self.plan.cluster}] although it "
                    f"is waived ({waiver.reason!r}): drop --raycallbacks-waive {check.id}"
                ),
                stacklevel=1,
            )

    def _fail(self, check: Check, failure: CheckFailed, waiver: Waiver | None) -> None:
        self.record.update(outcome="failed", failure=failure.as_dict())
        if waiver is not None:
            self.record["outcome"] = "waived"
            pytest.xfail(f"waived ({waiver.reason}): {check.id} failed: {failure.happened}")
        pytest.fail(f"[{check.id}] {check.rule}\n{failure.render()}", pytrace=False)

    def _skip(self, reason: str) -> None:
        self.record.update(outcome="skipped", note=reason)
        pytest.skip(reason)


def _kind(subject: Subject) -> str | None:
    try:
        return str(subject.kind)
    except Exception:
        return None


def _why_not_loaded(subject: Subject) -> str:
    from conformance import DOES_NOT_LOAD
    from reference_runner import CallbackLoadError

    try:
        is_class = subject.is_class
    except CallbackLoadError:
        is_class = False
    return DOES_NOT_LOAD.format(rule="loading.no-arg-class" if is_class else "loading.importable")


def _loads(subject: Subject) -> bool:
    from reference_runner import CallbackLoadError

    try:
        subject.load()
    except CallbackLoadError:
        return False
    return True
