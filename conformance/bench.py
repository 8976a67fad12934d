"""The scenarios the behaviour checks share, run once per callback and cluster.

:class:`Bench` runs a full lifecycle on a fresh instance, a second lifecycle on the same
instance, and each fault the cluster can inject with and without the callback, each through
:func:`~conformance.harness.run_scenario`, and caches them, so twenty checks cost a handful
of ``initialize_node`` runs. For a ``CallbackBase`` subclass Ray is the judge: its two
lifecycles are replica starts by Ray's own code (:func:`conformance.ray_harness.run_ray_scenario`:
a first replica, and a restarted one that builds a new instance), and there are no fault
runs (the faults are the reference runner's).

A run that overran a deadline halts the callback (:class:`~conformance.bounds.Halt`), and
no scenario with the callback starts after that, nor one the run's bound has no room for
(:class:`~conformance.bounds.CheckNotRun`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reference_runner import CallbackTimeoutError
from reference_runner.ray_replica import ReplicaStartTimeoutError

from .bounds import CheckNotRun, deadline_passed, scenario_bound_s
from .cluster_api import FAULTS, Cluster
from .context import Settings
from .harness import InitializeTimeoutError, Run, run_scenario, user_calls
from .ray_harness import RAY_START_CALLS, run_ray_scenario
from .ray_observer import StepTimeoutError
from .registry import CALLBACKBASE
from .subject import Subject

#: Longest the kit waits for a placement group on a cluster it drives in process; a group
#: the in-memory cluster cannot place at once it never will.
PLACEMENT_WAIT_S: Final = 5.0
#: How long the wait is when the fault makes every group infeasible.
FAULT_PLACEMENT_WAIT_S: Final = 0.5
#: A run that ended with one of these overran a deadline: the callback is halted.
DEADLINE_ERRORS: Final = (
    CallbackTimeoutError,
    InitializeTimeoutError,
    ReplicaStartTimeoutError,
    StepTimeoutError,
)


@dataclass
class Bench:
    """The scenarios of one callback on one cluster, each run once and cached."""

    subject: Subject
    cluster: Cluster
    settings: Settings
    #: The runs without the callback (:meth:`baseline`), by fault: they do not depend on
    #: the callback, so the benches of one cluster and settings may share one mapping.
    baselines: dict[str, Run] = field(default_factory=dict)
    _runs: dict[str, Run] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _instance: Any = None
    _extra: dict[str, Any] = field(default_factory=dict)

    def _run(
        self,
        scenario: str,
        callback: Callable[..., Any] | None,
        *,
        fault: str | None = None,
        extra_phases: Mapping[str, Sequence[str]] | None = None,
    ) -> Run:
        placement = FAULT_PLACEMENT_WAIT_S if fault else PLACEMENT_WAIT_S
        self._admit(callback, placement, extra_phases)
        run = run_scenario(
            self.cluster,
            callback,
            self.settings.base_config(),
            scenario=scenario,
            timeout_s=self.settings.timeout_s,
            placement_timeout_s=min(placement, self.settings.timeout_s),
            fault=fault,
            extra_phases=extra_phases,
        )
        for call in run.calls:
            self.subject.note_loaded(call.modules)
        if callback is not None and isinstance(run.error, DEADLINE_ERRORS):
            message = f"{run.scenario}: {run.error}"
            self.subject.halt(deadline_passed(self.subject.spec, message, constructor=False))
        return run

    def _ray_start(self, scenario: str) -> Run:
        """A ``CallbackBase`` scenario: one replica start by Ray's own code
        (:mod:`conformance.ray_harness`), admitted like every scenario."""
        placement_s = PLACEMENT_WAIT_S
        self._admit(self.subject, placement_s, None)
        run = run_ray_scenario(
            self.cluster,
            self.subject,
            scenario=scenario,
            timeout_s=self.settings.timeout_s,
            placement_timeout_s=min(placement_s, self.settings.timeout_s),
            torch_home=self.settings.torch_home(),
        )
        for call in run.calls:
            self.subject.note_loaded(call.modules)
        if isinstance(run.error, DEADLINE_ERRORS):
            message = f"{run.scenario}: {run.error}"
            self.subject.halt(deadline_passed(self.subject.spec, message, constructor=False))
        return run

    def _admit(
        self,
        callback: object,
        placement_s: float,
        extra_phases: Mapping[str, Sequence[str]] | None,
    ) -> None:
        """Raise :class:`~conformance.bounds.CheckNotRun` when the scenario must not start:
        the callback is halted, or the run's bound has no room for it (``callback``: what
        runs the subject, ``None`` for a baseline without it)."""
        halt = self.subject.halted
        if callback is not None and halt is not None:
            raise CheckNotRun(halt.summary)
        budget = self.settings.budget
        if budget is not None:
            timeout = self.settings.timeout_s
            placement = min(placement_s, timeout)
            calls = user_calls(callback is not None, extra_phases)
            if callback is not None and self.subject.style == CALLBACKBASE:
                calls = RAY_START_CALLS
            budget.require(
                scenario_bound_s(timeout, placement, max(timeout, placement), calls=calls)
            )

    def _cached(self, key: str, make: Callable[[], Run]) -> Run:
        with self._lock:
            if key not in self._runs:
                self._runs[key] = make()
            return self._runs[key]

    def lifecycle(self) -> Run:
        """The six phases through ``initialize_node`` on a fresh instance."""

        def make() -> Run:
            if self.subject.style == CALLBACKBASE:  # Ray builds it, in the replica
                return self._ray_start("first replica start")
            self._instance = self.subject.fresh()
            return self._run("first lifecycle", self._instance)

        return self._cached("lifecycle", make)

    def lifecycle_callback(self) -> Any:
        """The callback instance :meth:`lifecycle` (and :meth:`second_lifecycle`) ran
        (``None`` for a ``CallbackBase`` subclass: Ray built it, in the replica)."""
        self.lifecycle()
        return self._instance

    def second_lifecycle(self) -> Run:
        """Another full ``initialize_node`` on the instance of :meth:`lifecycle`; for a
        ``CallbackBase`` subclass a second replica start, as a restarted replica process
        builds a new instance."""
        self.lifecycle()
        if self.subject.style == CALLBACKBASE:  # a restarted replica: a new process
            return self._cached("second", lambda: self._ray_start("second replica start"))
        return self._cached("second", lambda: self._run("second lifecycle", self._instance))

    def faulted(self, fault: str) -> Run:
        """``initialize_node`` on a fresh instance with ``fault`` injected (``(phase,
        config, data)`` callbacks only)."""
        return self._cached(
            f"fault:{fault}",
            lambda: self._run(f"with {fault}", self.subject.fresh(), fault=fault),
        )

    def baseline(self, fault: str) -> Run:
        """``initialize_node`` without the callback, with ``fault`` injected: the failure
        the cluster itself produces (shared through :attr:`baselines`)."""
        with self._lock:
            run = self.baselines.get(fault)
        if run is None:
            run = self._run(f"{fault} without the callback", None, fault=fault)
        with self._lock:
            return self.baselines.setdefault(fault, run)

    def with_extra_phases(self, extra: Mapping[str, Sequence[str]]) -> Run:
        """``initialize_node`` on a fresh instance, also called with ``extra`` phase names
        right before the real phases they are keyed on (not cached)."""
        return self._run("with unknown phases", self.subject.fresh(), extra_phases=extra)

    def faults(self) -> tuple[str, ...]:
        """The faults this cluster can inject, in catalogue order."""
        return tuple(f for f in FAULTS if f in self.cluster.faults)

    def lifecycles(self) -> list[Run]:
        """Both lifecycles; only the first when it hung (a second would hang as long)."""
        first = self.lifecycle()
        if isinstance(first.error, DEADLINE_ERRORS):
            return [first]
        return [first, self.second_lifecycle()]

    def every_run(self) -> list[Run]:
        """Every scenario with the callback: both lifecycles and each fault (only the first
        lifecycle when it hung: each further run would wait out the timeout again)."""
        runs = self.lifecycles()
        if len(runs) > 1 and self.subject.style != CALLBACKBASE:  # faults: the fake's, not Ray's
            runs += [self.faulted(fault) for fault in self.faults()]
        return runs

    def remember(self, key: str, value: Any) -> Any:
        """Cache ``value`` under ``key`` unless something is there; return what is."""
        with self._lock:
            return self._extra.setdefault(key, value)

    def recall(self, key: str) -> Any:
        with self._lock:
            return self._extra.get(key)
