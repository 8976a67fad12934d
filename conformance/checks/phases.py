"""Phase rules: the callback follows the lifecycle of node initialization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conformance.context import CheckContext
from conformance.failure import CheckFailed, describe_error
from conformance.future_phases import unknown_phase_schedule
from conformance.harness import Run
from conformance.registry import CALLBACK, check
from conformance.runs import require_completed, return_problem, why_failed, written
from conformance.static import phase_names
from reference_runner import PHASES

_FIX_RAISE = (
    "handle every phase without raising: look data keys up with data.get(...), and ignore "
    "phases you do not act on"
)


@check(
    "phases.lifecycle",
    styles=(CALLBACK,),
    rule=(
        "On a fresh instance it runs through all six phases in order, never raising, "
        "returning None or a mapping."
    ),
    why="""initialize_node calls every callback at each of the six phases on every replica;
    one exception or bad return value stops the replica from starting.""",
)
def lifecycle(ctx: CheckContext) -> str | None:
    run = ctx.require_bench().lifecycle()
    seen = [c.phase for c in run.known_calls]
    problem = why_failed(run)
    if problem is not None:
        missing = [p for p in PHASES if p not in seen]
        raise CheckFailed(
            expected=f"calls for all six phases, in order: {', '.join(PHASES)}",
            happened=problem + (f"\nphases it never got: {', '.join(missing)}" if missing else ""),
            fix=_FIX_RAISE,
        )
    if tuple(seen) != PHASES:  # pragma: no cover - initialize_node emits them in order
        raise CheckFailed(
            expected=f"the phases in order: {', '.join(PHASES)}",
            happened=f"it was called with {seen}",
            fix="report this: the reference runner emitted an unexpected order",
        )
    return None


@check(
    "phases.unknown-names",
    styles=(CALLBACK,),
    rule=(
        "It ignores phase names it does not know (future phases), wherever they come, "
        "without raising."
    ),
    why="""Ray adds phases over time; a callback that raises on an unknown name breaks every
    deployment on the upgrade, long after it was certified.""",
)
def unknown_names(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    require_completed(bench.lifecycle(), "see phases.lifecycle")
    schedule = unknown_phase_schedule(ctx.settings.unknown_phase_names)
    run = bench.with_extra_phases(schedule)
    problem = _unknown_phase_problem(run, schedule)
    if problem is not None:
        raise CheckFailed(
            expected="unknown phase names (future-looking, near misses of real ones and "
            "generated identifiers, placed before each real phase) to be ignored: no "
            "exception, a None or mapping return, the real phases unaffected",
            happened=problem,
            fix="end the callback with a catch-all that returns None (if/elif chains with "
            "no else, dict.get(phase) dispatch) and never parse or assert on the phase name",
        )
    tried = sum(len(names) for names in schedule.values())
    return f"ignored {tried} unknown phase names placed before the six real phases"


def _unknown_phase_problem(run: Run, schedule: Mapping[str, Sequence[str]]) -> str | None:
    before = {name: phase for phase, names in schedule.items() for name in names}
    answered = 0
    for call in run.calls:
        if call.known:
            continue
        where = f"placed before {before.get(call.phase, '?')!r}"
        if answered:
            where += f"; it had ignored {answered} unknown name(s) before it"
        if call.error is not None:
            return (
                f"called with unknown phase {call.phase!r} ({where}), it raised "
                f"{describe_error(call.error)}"
            )
        problem = return_problem(call.returned)
        if problem:
            return f"called with unknown phase {call.phase!r} ({where}), it {problem}"
        answered += 1
    if run.error is not None:
        plan = "; ".join(f"{', '.join(map(repr, n))} before {p!r}" for p, n in schedule.items())
        return f"with unknown phases interleaved ({plan}) the run broke: {why_failed(run)}"
    return None


@check(
    "phases.second-lifecycle",
    styles=(CALLBACK,),
    rule="A second full lifecycle on the same instance works and does the same as the first.",
    why="""Ray keeps one callback instance per process and a replica process can initialize
    more than once (restarts, several engines); state left over from the first run must
    not break or change the second.""",
)
def second_lifecycle(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    first = require_completed(bench.lifecycle(), "see phases.lifecycle")
    second = bench.second_lifecycle()
    problem = why_failed(second)
    if problem is not None:
        raise CheckFailed(
            expected="a second initialize_node with the same instance to complete",
            happened=problem,
            fix="reset per-run state at 'pre_initialization' instead of assuming a fresh "
            "instance (no 'already initialized' flags, no values consumed by the first run)",
        )
    differences = _differences(first, second)
    if differences:
        raise CheckFailed(
            expected="the second lifecycle to set the same keys in the same phases",
            happened="\n".join(differences),
            fix="reset per-run state at 'pre_initialization'; a replica that restarts must "
            "get the same initialization as the first time",
        )
    return None


def _keys_by_phase(run: Run) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for call in run.known_calls:
        keys.setdefault(call.phase, set()).update(written(call))
    return keys


def _differences(first: Run, second: Run) -> list[str]:
    a, b = _keys_by_phase(first), _keys_by_phase(second)
    lines = []
    for phase in PHASES:
        if a.get(phase, set()) != b.get(phase, set()):
            lines.append(
                f"in phase {phase!r} it set {sorted(a.get(phase, set()))} the first time and "
                f"{sorted(b.get(phase, set()))} the second time"
            )
    return lines


@check(
    "phases.known-names",
    styles=(CALLBACK,),
    rule="Every phase name it compares against is one the runner emits.",
    why="""A misspelt phase name never matches: the code behind it silently never runs on
    the cluster (the source design's Example 3 tests 'pre_init').""",
    runs_on="driver",
)
def known_names(ctx: CheckContext) -> str | None:
    callback: Any = ctx.subject.resolve().target
    names = phase_names(callback)
    wrong = [n for n in names if not n.emitted]
    if wrong:
        lines = [
            f"compares the phase with {n.name!r} ({_how(n.how)}) at {n.source_location}; "
            f"the runner never emits a phase like that; closest real phase: {n.closest!r}"
            for n in wrong
        ]
        raise CheckFailed(
            expected=f"phase names among {', '.join(PHASES)}",
            happened="\n".join(lines),
            fix="use the names in reference_runner.PHASES (import the constants from "
            "reference_runner.phases instead of typing strings)",
        )
    used = sorted({n.name for n in names})
    return f"compares with {used}" if used else "compares with no phase name"


def _how(how: str) -> str:
    return {"prefix": "as a prefix", "suffix": "as a suffix"}.get(how, "for equality")
