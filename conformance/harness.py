"""Running one scenario: a callback through ``initialize_node`` on a cluster, recorded.

:func:`run_scenario` runs the real :func:`reference_runner.initialize_node` on a cluster
(the fake one, or a live one) with ``[Neighbour(), <recorded callback>]`` as the config's
callbacks (the callback wrapped in a :class:`~conformance.recorder.Recorder`), and returns a
:class:`Run`: every call the callback got, the outcome of ``initialize_node``, what was left
alive on the cluster, whether an injected fault was hit, and which nodes of the final
placement group lack the model files (read from the files present on each node, while the
cluster is still there). The process state is put back when the run ends, whatever the
callback did (:mod:`conformance.process_state`).

Every run is bounded as a whole (:func:`initialize_bounded`): ``initialize_node`` runs on a
thread and event loop the caller does not share, and past its bound the run ends with an
:class:`InitializeTimeoutError` naming where the callback was; each callback call inside is
bounded on its own by the runner (docs/design.md §Bounds on user code).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from reference_runner import InitializeNodeOutput, LLMConfig, initialize_node
from reference_runner.download_check import final_group_missing_model
from reference_runner.phases import PRE_INITIALIZATION
from reference_runner.reserved import SKIP_DEFAULT_INIT

from .bounds import PHASE_CALLS, scenario_bound_s
from .cluster_api import Cluster, ClusterScope
from .deadline import DeadlineExceeded, call_with_deadline
from .process_state import restore, snapshot
from .recorder import Call, Recorder

T = TypeVar("T")

#: The key the neighbour callback sets, to see whether the callback under test respects
#: keys other callbacks own.
NEIGHBOUR_KEY: Final = "raycallbacks.neighbour"


class Neighbour:
    """Another team's callback, listed before the one under test: it sets
    :data:`NEIGHBOUR_KEY` in ``pre_initialization`` and nothing else."""

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if phase == PRE_INITIALIZATION:
            return {NEIGHBOUR_KEY: {"set_by": "another callback", "phase": phase}}
        return None


@dataclass
class Run:
    """One ``initialize_node`` run with the callback (or without it, for a baseline)."""

    scenario: str
    calls: list[Call]
    output: InitializeNodeOutput | None
    error: BaseException | None
    leaks: list[str] = field(default_factory=list)
    fault_fired: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    #: ``{node id: what it lacks}`` for the final group's nodes; ``{}`` when each holds the
    #: model; ``None`` when the run raised or ``skip_default_init`` was set.
    missing_model: dict[str, str] | None = None
    #: For a ``CallbackBase`` scenario run by Ray's code (:mod:`conformance.ray_harness`):
    #: the :class:`~reference_runner.ray_replica.ReplicaStart`; ``calls`` are Ray's steps.
    ray: Any = None

    @property
    def subject_raised(self) -> bool:
        """True when ``error`` is the very exception the callback raised."""
        return self.error is not None and any(c.error is self.error for c in self.calls)

    @property
    def known_calls(self) -> list[Call]:
        return [c for c in self.calls if c.known]


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private event loop in this thread.

    The loop is never installed as the thread's current loop, so whatever event loop
    pytest-asyncio (or the user) manages is left untouched.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def initialize_bounded(
    config: LLMConfig,
    timeout_s: float,
    placement_timeout_s: float,
    *,
    calls: int | None = None,
    where: Callable[[], str] | None = None,
) -> InitializeNodeOutput:
    """``initialize_node(config)`` with every wait bounded by the kit's timeouts, and the
    whole of it too: it runs on a thread and event loop of its own
    (:func:`conformance.deadline.call_with_deadline`), abandoned past
    :func:`conformance.bounds.scenario_bound_s` for ``calls`` calls of user callbacks
    (default: six per callback), when :class:`InitializeTimeoutError` says where it was
    (``where()``)."""
    download_timeout_s = max(timeout_s, placement_timeout_s)
    bound_s = scenario_bound_s(
        timeout_s,
        placement_timeout_s,
        download_timeout_s,
        calls=PHASE_CALLS * len(config.callbacks) if calls is None else calls,
    )

    def run() -> InitializeNodeOutput:
        return run_coroutine(
            initialize_node(
                config,
                callback_timeout_s=timeout_s,
                placement_group_timeout_s=placement_timeout_s,
                download_timeout_s=download_timeout_s,
            )
        )

    try:
        return call_with_deadline(run, bound_s, what="initialize_node")
    except DeadlineExceeded:
        raise InitializeTimeoutError(bound_s, where() if where is not None else None) from None


class InitializeTimeoutError(TimeoutError):
    """``initialize_node`` as a whole overran its bound (its thread was abandoned)."""

    def __init__(self, bound_s: float, where: str | None) -> None:
        self.bound_s = bound_s
        self.where = where
        super().__init__(
            f"initialize_node did not finish within {bound_s:g} s, the bound on one whole run "
            "(every callback call, placement wait and download round at its limit)"
            + (f"; it was {where}" if where else "")
            + ": something the per-call bounds do not cover blocked (an object the callback "
            "returned or stored that blocks when read?)"
        )


def user_calls(with_callback: bool, extra_phases: Mapping[str, Sequence[str]] | None) -> int:
    """Calls of user code in one scenario: six phases plus the extra phase names, or none
    for a baseline (the neighbour is the kit's own and returns at once)."""
    if not with_callback:
        return 0
    return PHASE_CALLS + sum(len(names) for names in (extra_phases or {}).values())


def where_in(recorder: Recorder | None) -> str:
    """Where a run of ``recorder``'s callback was, for :class:`InitializeTimeoutError`."""
    calls = recorder.calls if recorder is not None else []
    if not calls:
        return "before the callback's first call"
    last = calls[-1]
    if not last.finished:
        return f"in phase {last.phase!r}, inside the callback's call"
    return f"after the callback's call for phase {last.phase!r} returned"


def config_with(base: LLMConfig, callbacks: Sequence[Any]) -> LLMConfig:
    """A fresh, validated copy of ``base`` with ``callbacks``."""
    return LLMConfig(**base.model_dump(exclude={"callbacks"}), callbacks=list(callbacks))


def run_scenario(
    cluster: Cluster,
    callback: Callable[..., Any] | None,
    base_config: LLMConfig,
    *,
    scenario: str,
    timeout_s: float,
    placement_timeout_s: float,
    fault: str | None = None,
    extra_phases: Mapping[str, Sequence[str]] | None = None,
    scope: ClusterScope | None = None,
) -> Run:
    """Run ``initialize_node`` on ``cluster`` with ``[Neighbour(), callback]`` (``callback``
    ``None``: the neighbour alone, a baseline) and record everything (see :class:`Run`).

    Each run gets a fresh cluster scope (``fault`` injected), unless ``scope`` is given: runs
    that share one (many short ones) report the leaks of all of them together.
    A ``BaseException`` the callback raised is recorded like any error; one that did not
    come from the callback (the user pressing Ctrl-C) propagates.
    """
    output: InitializeNodeOutput | None = None
    error: BaseException | None = None
    missing: dict[str, str] | None = None
    with contextlib.nullcontext(scope) if scope is not None else cluster.scope(fault) as scope:
        reconnect = getattr(scope, "reconnect", None)
        recorder = (
            Recorder(callback, extra_phases=extra_phases, reconnect=reconnect)
            if callback is not None
            else None
        )
        callbacks: list[Any] = [Neighbour()]
        if recorder is not None:
            callbacks.append(recorder.wrapper)
        config = config_with(base_config, callbacks)
        state = snapshot()
        try:
            output = initialize_bounded(
                config,
                timeout_s,
                placement_timeout_s,
                calls=user_calls(recorder is not None, extra_phases),
                where=lambda: where_in(recorder),
            )
        except Exception as exc:
            error = exc
        except BaseException as exc:
            if recorder is None or not any(c.error is exc for c in recorder.calls):
                raise
            error = exc
        finally:
            restore(state, reconnect=reconnect)  # a call that timed out was not put back
        if output is not None:
            missing = _missing_model(output)
        if output is not None and output.placement_group is not None:
            _release(output.placement_group)  # the engine's group: handed back, not a leak
        leaks = scope.leaks()
        fired = scope.fault_fired()
        resources = dict(scope.resources())
    return Run(
        scenario=scenario,
        calls=recorder.calls if recorder is not None else [],
        output=output,
        error=error,
        leaks=leaks,
        fault_fired=fired,
        resources=resources,
        missing_model=missing,
    )


def _missing_model(output: InitializeNodeOutput) -> dict[str, str] | None:
    """Which nodes of ``output``'s final group lack the model files, from the files on disk
    (the fake cluster's nodes share this machine's disk); an error reading the group is said
    so; ``None`` with ``skip_default_init``."""
    if output.data.get(SKIP_DEFAULT_INIT) is True:
        return None
    try:
        return final_group_missing_model(output, on_disk=True)
    except Exception as exc:
        return {"<placement group>": f"its nodes cannot be read: {type(exc).__name__}: {exc}"}


def _release(group: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.util.remove_placement_group(group)
