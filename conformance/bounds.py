"""Bounds on user code and on the whole run (docs/design.md §Bounds on user code).

Three things live here:

* :class:`Halt`: why the kit runs no more of one callback's code. A callback is halted when
  a deadline passed for it (a phase call, ``initialize_node`` as a whole, its constructor:
  its code may still be running on an abandoned thread) or when the import probe refused
  its module (the import did not finish within the import limit, or it ended the
  interpreter): the kit then never imports it in the test process. The checks named in
  :attr:`Halt.still_run` still judge it, from what was recorded; every other check of the
  callback is *not run*, with :attr:`Halt.summary` as the reason.
* :class:`RunBudget`: the whole run's bound, stated up front and enforced: work that could
  take longer than what is left of it is not started (:class:`CheckNotRun`).
* the arithmetic of the bounds (:func:`call_bound_s`, :func:`scenario_bound_s`,
  :func:`probe_bound_s`), shared by the code that enforces them and the kit that states them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from reference_runner.bounded import grace_s

#: The six phases of ``initialize_node``.
PHASE_CALLS: Final = 6
#: Rounds of model downloads in one ``initialize_node``: the local node, then one per
#: serving of the placement group (after it is placed, after ``post_placement_group``,
#: after ``pre_engine_init``).
DOWNLOAD_ROUNDS: Final = 4
#: Placement-group waits in one ``initialize_node`` (one per group served).
PLACEMENT_WAITS: Final = 3
#: The system's own work in one scenario on the in-memory cluster (starting it, tasks, the
#: kit's own callbacks such as the neighbour, which return at once).
SCENARIO_OVERHEAD_S: Final = 5.0
#: Checks whose rule a passed deadline breaks: they still judge a halted callback.
DEADLINE_RULE: Final = "errors.within-timeout"

#: What a blocking import usually is, and its fix.
IMPORT_CAUSE: Final = (
    "a blocking call at import time (network, lock, input())? move it into the callback or "
    "behind a function"
)


class CheckNotRun(BaseException):
    """The check is not run, for :attr:`reason`: the callback is halted or the run reached
    its bound. A ``BaseException``, so that no check (nor Hypothesis) takes it for a
    failure of the callback; the kit records the check as *not run*."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Halt:
    """Why the kit runs no more of a callback's code (see the module docstring).

    ``reason`` says what overran or broke and the likely cause, ``fix`` what to change
    (what the checks in ``still_run`` fail with); ``imported`` is false when the spec was
    never imported in the test process (``probed``: because its fresh-interpreter probe
    refused it; else its import here was interrupted); ``check`` names the check that was
    running when it happened.
    """

    spec: str
    reason: str
    still_run: tuple[str, ...]
    fix: str = ""
    imported: bool = True
    check: str | None = None
    probed: bool = True

    @property
    def summary(self) -> str:
        """The reason each not-run check of the callback gets."""
        if not self.imported:
            how = "was never imported" if self.probed else "did not import"
            return f"{self.spec} {how} in the test process: {self.reason}"
        where = f" in {self.check}" if self.check else ""
        return (
            f"{self.spec} overran a deadline{where} and may still be running, so the kit runs "
            f"no more of its code: {self.reason}"
        )


def import_refused(spec: str, module: str, limit_s: float, *, died: str | None) -> Halt:
    """The halt of a spec whose import probe timed out (``died`` ``None``) or ended the
    interpreter (``died``: how, e.g. "the interpreter exited with status 3 while ...")."""
    if died is None:
        reason = f"importing {module!r} did not finish within {limit_s:g} s: {IMPORT_CAUSE}"
        still: tuple[str, ...] = ("loading.importable", "loading.import-time")
        fix = (
            "move slow or blocking work (network calls, downloads, locks, input()) out of "
            "module import, into the phase that needs it or behind a function"
        )
    else:
        reason = (
            f"importing {module!r} ended the interpreter ({died}): the module exits or "
            "crashes at import time (os._exit, a crash in a C extension, a killed process)"
        )
        still = ("loading.importable",)
        fix = "make importing the module free of such side effects; fail with an exception"
    return Halt(spec=spec, reason=reason, still_run=still, fix=fix, imported=False)


def import_hung_here(spec: str, module: str, limit_s: float) -> Halt:
    """The halt of a spec whose import in the test process overran ``limit_s`` and was
    interrupted, after its fresh-interpreter probe imported it in time."""
    return Halt(
        spec=spec,
        reason=(
            f"importing {module!r} did not finish within {limit_s:g} s and was interrupted, "
            "although a fresh interpreter imported it in time: at import time the module "
            "waits for something only this process has (a lock another thread holds, a "
            "thread, a server or state of pytest's or a plugin's)"
        ),
        still_run=("loading.importable",),
        fix=(
            "make importing the module independent of the process that imports it: start "
            "threads and connections, and wait for them, in the phase that needs them"
        ),
        imported=False,
        probed=False,
    )


def deadline_passed(spec: str, message: str, *, constructor: bool) -> Halt:
    """The halt of a callback whose code overran a deadline (``message`` says which and
    why); its code may still be running on an abandoned thread."""
    if constructor:
        still: tuple[str, ...] = (
            "loading.importable",
            "loading.no-arg-class",
            "callbackbase.constructor",
        )
        fix = (
            "make the constructor return promptly: create clients, load models and wait for "
            "resources lazily, in the phase that needs them"
        )
    else:
        still = (DEADLINE_RULE,)
        fix = (
            "make every call return within the timeout: no blocking calls inside async def "
            "(await asyncio.sleep, asyncio.to_thread), re-raise asyncio.CancelledError, move "
            "slow work out of the callback"
        )
    return Halt(spec=spec, reason=message, still_run=still, fix=fix)


# ---------------------------------------------------------------------------------- bounds


def call_bound_s(timeout_s: float) -> float:
    """Longest one bounded callback call can hold its caller: the timeout plus the grace
    spent telling why it overran (:func:`reference_runner.bounded.grace_s`)."""
    return timeout_s + grace_s(timeout_s)


def scenario_bound_s(
    timeout_s: float,
    placement_timeout_s: float,
    download_timeout_s: float,
    *,
    calls: int = PHASE_CALLS,
) -> float:
    """Longest one ``initialize_node`` run can take when each of its ``calls`` calls of user
    callbacks, placement waits and download rounds takes as long as it may."""
    return (
        calls * call_bound_s(timeout_s)
        + PLACEMENT_WAITS * placement_timeout_s
        + DOWNLOAD_ROUNDS * download_timeout_s
        + SCENARIO_OVERHEAD_S
    )


def probe_bound_s(import_limit_s: float, timeout_s: float, *, startup: bool = False) -> float:
    """Longest one import probe can take: the fork, the import, three later stages each
    bounded by the timeout, the kill; ``startup`` adds starting the probe server."""
    from .probe_host import FORK_S, KILL_WAIT_S, STARTUP_S

    return (
        (STARTUP_S if startup else 0.0)
        + FORK_S
        + import_limit_s
        + grace_s(import_limit_s)
        + 3 * call_bound_s(timeout_s)
        + KILL_WAIT_S
    )


class RunBudget:
    """The run's stated bound (``bound_s``), counted on ``clock`` from ``started`` (default:
    now); time spent outside the kit (other tests of the session) is :meth:`exclude`-d, and
    ``reserve_s`` of it is kept for ending the session (certificate, summary, teardown)."""

    def __init__(
        self,
        bound_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        started: float | None = None,
        reserve_s: float = 0.0,
    ) -> None:
        self.bound_s = bound_s
        self.reserve_s = reserve_s
        self._clock = clock
        self._started = clock() if started is None else started
        self._excluded = 0.0
        self._lock = threading.Lock()
        self.reached = False

    @property
    def reason(self) -> str:
        return f"not run: the run reached its bound of {self.bound_s:g} s"

    def exclude(self, seconds: float) -> None:
        """Do not count ``seconds`` spent on something else than the kit's work."""
        with self._lock:
            self._excluded += max(0.0, seconds)

    def elapsed_s(self) -> float:
        with self._lock:
            return self._clock() - self._started - self._excluded

    def remaining_s(self) -> float:
        """What is left for the kit's work (the reserve not counted)."""
        return self.bound_s - self.reserve_s - self.elapsed_s()

    def require(self, need_s: float) -> None:
        """Raise :class:`CheckNotRun` unless ``need_s`` seconds of work still fit."""
        if self.remaining_s() < need_s:
            self.reached = True
            raise CheckNotRun(self.reason)


__all__ = [
    "DEADLINE_RULE",
    "CheckNotRun",
    "Halt",
    "RunBudget",
    "call_bound_s",
    "deadline_passed",
    "import_refused",
    "probe_bound_s",
    "scenario_bound_s",
]
