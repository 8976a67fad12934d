"""Running one conformance item: the check, its waiver, its record.

:class:`CheckRun` is what the ``raycallbacks_check`` fixture gives an item. ``run()``
builds the check's context (the callback, the cluster, the settings), runs the check and
turns the outcome into pytest's: a broken rule fails with the check's message (no
traceback: the message says what was expected, what happened and how to fix it); a waived
failure is an ``xfail``; a check that cannot judge is a skip; a check the kit does not run (the
callback is halted, or the run's bound has no room for it: docs/design.md §Bounds on user
code) is a skip recorded as ``not run``, with the reason; a deadline that passes while the
check runs is that check's failure; a waived check that passes
warns with :class:`StaleWaiverWarning`. A passing check may return advice
(:class:`conformance.Advice`), recorded as ``record["advice"]`` for the summary and the
certificate. Everything is also written to the item's record, which the certificate and the
summary read.

Each check starts from the process state the kit set up, whatever the previous check's
callback did: the state (``os.environ``, the working directory, ``sys.path``, the event-loop
policy, signal handlers) is put back when the check ends, and a driver a callback
disconnected from the live cluster is connected again
(:mod:`conformance.process_state`). The modules the callback was seen to load are recorded
as ``record["loaded"]`` (module -> file) for the certificate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_raycallbacks.report.results import INCONCLUSIVE, NOT_RUN

from .waivers import Waiver, find_waiver

if TYPE_CHECKING:
    from conformance import Check, CheckFailed, Cluster, Inconclusive, Subject
    from conformance.process_state import ProcessState

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
        from conformance.process_state import restore, snapshot

        run = cls(kit, plan, request, record)
        if plan.cluster == "local":
            return run  # no cluster to start, and nothing of the callback to build at setup
        state = snapshot()
        try:
            loads = _loads(kit.subject(plan.spec))  # builds a class spec's instance
        finally:
            restore(state, ray=False)
        if loads or not get_check(plan.check).needs_callback:
            run.cluster = kit.cluster(plan.cluster, request)
        return run

    def run(self) -> None:
        from conformance import (
            Advice,
            CheckContext,
            CheckFailed,
            CheckSkipped,
            Inconclusive,
            get_check,
            start_probe_early,
        )
        from conformance.bounds import CheckNotRun
        from conformance.process_state import snapshot

        check = get_check(self.plan.check)
        subject = self.kit.subject(self.plan.spec)
        self.record["subject"] = {
            **subject.source,
            "kind": _kind(subject),
            "style": subject.style,
        }
        self._admit(check, subject)
        judges_halt = subject.halted is not None and check.id in subject.halted.still_run
        if check.needs_callback and not judges_halt and not _loads(subject):
            self._skip(_why_not_loaded(subject))
        cluster = self.cluster
        if cluster is not None:
            self.record["cluster_description"] = cluster.describe()
        settings = self.kit.check_settings(self.request.getfixturevalue("tmp_path_factory"))
        waiver = find_waiver(self.kit.settings.waivers, check.id, self.plan.spec)
        if waiver is not None:
            self.record["waiver"] = waiver.reason
        failure: CheckFailed | None = None
        note: str | None = None
        skipped: str | None = None
        not_run: str | None = None
        inconclusive: Inconclusive | None = None
        halted_before = subject.halted
        state = snapshot()
        try:
            ctx = CheckContext(
                subject=subject,
                settings=settings,
                cluster=cluster,
                bench=self.kit.bench(subject, cluster, settings) if cluster is not None else None,
            )
            start_probe_early(ctx)  # builds what ships: a CallbackBase instance, say
            halted_before = subject.halted  # a halt from here on is this check's
            if halted_before is not None and check.id not in halted_before.still_run:
                raise CheckNotRun(halted_before.summary)
            subject.running_check = check.id
            note = check.function(ctx)
        except CheckFailed as exc:
            failure = exc
        except CheckSkipped as exc:
            skipped = str(exc)
        except CheckNotRun as exc:
            not_run = exc.reason
        except Inconclusive as exc:
            inconclusive = exc
        except Exception:
            if halted_before is not None or subject.halted is None:
                raise  # the check crashed: not because a deadline passed in it
        finally:
            subject.running_check = None
            self._restore(state)
            self.record["loaded"] = subject.loaded_modules()
        halt = subject.halted
        if halted_before is None and halt is not None and failure is None:
            # A deadline passed while this check ran: whatever the check made of it, that
            # is its failure (docs/design.md §Bounds on user code).
            failure = CheckFailed(
                expected="the callback's code to finish within the kit's bounds while "
                f"{check.id} ran",
                happened=halt.reason,
                fix=halt.fix,
            )
        if failure is not None:
            self._fail(check, failure, waiver)
        if inconclusive is not None:
            self._inconclusive(inconclusive)
        if not_run is not None:
            self._not_run(not_run)
        if skipped is not None:
            self._skip(skipped)
        self.record.update(outcome="passed", note=note)
        if isinstance(note, Advice):
            self.record["advice"] = str(note)
        if waiver is not None:
            self.record["stale_waiver"] = True
            warnings.warn(
                StaleWaiverWarning(
                    f"{check.id} passes for {self.plan.spec} [{self.plan.cluster}] although it "
                    f"is waived ({waiver.reason!r}): drop --raycallbacks-waive {check.id}"
                ),
                stacklevel=1,
            )

    def _restore(self, state: ProcessState) -> None:
        """Put the process state back (the Ray connection: see the module docstring)."""
        from conformance.process_state import restore

        restore(state, ray=False)
        reconnect = getattr(self.cluster, "reconnect", None)
        if reconnect is not None:
            try:
                reconnect()
            except Exception as exc:  # the next check that needs the cluster says why
                self.record["restore_error"] = f"{type(exc).__name__}: {exc}"

    def _fail(self, check: Check, failure: CheckFailed, waiver: Waiver | None) -> None:
        self.record.update(outcome="failed", failure=failure.as_dict())
        if waiver is not None:
            self.record["outcome"] = "waived"
            pytest.xfail(f"waived ({waiver.reason}): {check.id} failed: {failure.happened}")
        pytest.fail(f"[{check.id}] {check.rule}\n{failure.render()}", pytrace=False)

    def _skip(self, reason: str) -> None:
        self.record.update(outcome="skipped", note=reason)
        pytest.skip(reason)

    def _inconclusive(self, exc: Inconclusive) -> None:
        """Record the check as *inconclusive*: it could not judge the callback here, for
        what this environment lacks (pytest shows a skip; the verdict is inconclusive)."""
        self.record.update(outcome=INCONCLUSIVE, note=str(exc), inconclusive=exc.as_dict())
        pytest.skip(str(exc))

    def _not_run(self, reason: str) -> None:
        """Record the check as *not run* for ``reason`` (pytest shows a skip)."""
        self.record.update(outcome=NOT_RUN, note=reason)
        pytest.skip(reason)

    def _admit(self, check: Check, subject: Subject) -> None:
        """Not run when the callback is halted (unless ``check`` still judges it) or when
        what the check could take no longer fits in the run's bound."""
        from conformance.bounds import CheckNotRun, call_bound_s, probe_bound_s

        from .run_bound import ITEM_OVERHEAD_S

        halt = subject.halted
        if halt is not None and check.id not in halt.still_run:
            self._not_run(halt.summary)
        timeout = self.kit.settings.timeout_s
        need = ITEM_OVERHEAD_S  # on a cluster: each scenario it starts is admitted on its own
        if check.fresh_process:
            need += probe_bound_s(self.kit.import_limit_s, timeout)
        elif self.plan.cluster == "local":
            need += call_bound_s(timeout)
        try:
            self.kit.budget.require(need)
        except CheckNotRun as exc:
            self._not_run(exc.reason)


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
