"""Running one scenario: a callback through ``initialize_node`` on a cluster, recorded.

:func:`run_scenario` runs the real :func:`reference_runner.initialize_node` on a cluster
(the fake one, or a live one) with ``[Neighbour(), <recorded callback>]`` as the config's
callbacks (the callback wrapped in a :class:`~conformance.recorder.Recorder`), and returns a
:class:`Run`: every call the callback got, the outcome of ``initialize_node``, what was left
alive on the cluster, and whether an injected fault was hit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from reference_runner import InitializeNodeOutput, LLMConfig, initialize_node
from reference_runner.phases import PRE_INITIALIZATION

from .cluster_api import Cluster, ClusterScope
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
    config: LLMConfig, timeout_s: float, placement_timeout_s: float
) -> InitializeNodeOutput:
    """``initialize_node(config)`` with every wait bounded by the kit's timeouts."""
    return run_coroutine(
        initialize_node(
            config,
            callback_timeout_s=timeout_s,
            placement_group_timeout_s=placement_timeout_s,
            download_timeout_s=max(timeout_s, placement_timeout_s),
        )
    )


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
    recorder = Recorder(callback, extra_phases=extra_phases) if callback is not None else None
    callbacks: list[Any] = [Neighbour()]
    if recorder is not None:
        callbacks.append(recorder.wrapper)
    config = config_with(base_config, callbacks)
    output: InitializeNodeOutput | None = None
    error: BaseException | None = None
    with contextlib.nullcontext(scope) if scope is not None else cluster.scope(fault) as scope:
        try:
            output = initialize_bounded(config, timeout_s, placement_timeout_s)
        except Exception as exc:
            error = exc
        except BaseException as exc:
            if recorder is None or not any(c.error is exc for c in recorder.calls):
                raise
            error = exc
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
    )


def _release(group: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.util.remove_placement_group(group)
