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

from .results import PLAN_KEY, RECORD_KEY, ItemPlan
from .waivers import Waiver, find_waiver

if TYPE_CHECKING:
    from conformance import Check, CheckFailed, Host

    from .kit import Kit


class StaleWaiverWarning(pytest.PytestWarning):
    """A waived conformance check passes: drop the waiver."""


@dataclass
class CheckRun:
    """One check for one callback on one cluster, ready to :meth:`run`."""

    kit: Kit
    plan: ItemPlan
    request: pytest.FixtureRequest
    record: dict[str, Any]
    host: Host | None = None

    @classmethod
    def for_item(cls, request: pytest.FixtureRequest) -> CheckRun:
        from conformance import get_check

        from .kit import KIT_KEY

        kit = request.config.stash.get(KIT_KEY, None)
        plan = request.node.stash.get(PLAN_KEY, None)
        if kit is None or plan is None:
            raise pytest.UsageError(
                "raycallbacks_check belongs to the items of --raycallbacks-conformance; use "
                "callback_runner, fake_ray_cluster or gpu_ray_cluster in your own tests"
            )
        run = cls(kit, plan, request, request.node.stash[RECORD_KEY])
        # At setup, so that starting the live cluster counts (and fails) as setup; not for
        # a callback that does not load (its checks are skipped, no cluster is needed).
        if _loads(kit.subject(plan.spec)) or not get_check(plan.check).needs_callback:
            run.host = kit.host(plan.where, request)
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
        host = self.host
        if host is not None:
            self.record["host"] = host.describe()
        settings = self.kit.check_settings(self.request.getfixturevalue("tmp_path_factory"))
        ctx = CheckContext(
            subject=subject,
            settings=settings,
            where=self.plan.where,
            host=host,
            bench=self.kit.bench(subject, host, settings) if host is not None else None,
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
                    f"{check.id} passes for {self.plan.spec} [{self.plan.where}] although it is "
                    f"waived ({waiver.reason!r}): drop --raycallbacks-waive {check.id}"
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


def _kind(subject: Any) -> str | None:
    try:
        return str(subject.kind)
    except Exception:
        return None


def _why_not_loaded(subject: Any) -> str:
    from conformance.loading import DOES_NOT_LOAD
    from reference_runner import CallbackLoadError

    try:
        is_class = subject.is_class
    except CallbackLoadError:
        is_class = False
    return DOES_NOT_LOAD.format(rule="loading.no-arg-class" if is_class else "loading.importable")


def _loads(subject: Any) -> bool:
    from reference_runner import CallbackLoadError

    try:
        subject.load()
    except CallbackLoadError:
        return False
    return True
