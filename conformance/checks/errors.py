"""Error rules: failures are Exceptions that reach the caller intact, and nothing is left
behind."""

from __future__ import annotations

import pickle
import sys

from conformance.bounds import DEADLINE_RULE
from conformance.context import CheckContext
from conformance.failure import CheckFailed, CheckSkipped, describe_error
from conformance.harness import Run
from conformance.registry import CALLBACK, CALLBACKBASE, check
from conformance.runs import call_site, failing_call, require_completed
from conformance.static import exits
from reference_runner import CallbackTimeoutError

_NOTE_PREFIX = "[reference_runner] raised by callback"


@check(
    "errors.only-exceptions",
    rule="It raises only Exceptions: never SystemExit, KeyboardInterrupt or another BaseException.",
    why="""A BaseException skips every 'except Exception' on the way up: sys.exit() in a
    callback kills the Ray worker (and the replica) instead of failing one initialization
    with a readable error.""",
)
def only_exceptions(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    for run in bench.every_run():
        for call in run.calls:
            if call.error is not None and not isinstance(call.error, Exception):
                raise CheckFailed(
                    expected="failures raised as Exception subclasses",
                    happened=f"in {call_site(call, run)} it raised {describe_error(call.error)}, "
                    "a BaseException that is not an Exception",
                    fix=_FIX_EXIT,
                )
    found = exits(ctx.subject.resolve().target)
    if found:
        raise CheckFailed(
            expected="no code path that exits the process or raises a non-Exception",
            happened="\n".join(f"{e.what} at {e.source_location}" for e in found),
            fix=_FIX_EXIT,
        )
    return None


_FIX_EXIT = (
    "raise an Exception subclass (RuntimeError, ValueError, your own) with a message saying "
    "what is wrong; never call sys.exit()/os._exit() or raise SystemExit/KeyboardInterrupt"
)


@check(
    "errors.failure-context",
    styles=(CALLBACK,),
    rule=(
        "A failure it raises reaches the caller as itself, naming the callback and the "
        "phase, and survives pickling."
    ),
    why="""On a cluster the error crosses from the replica's worker to the controller by
    pickling; an exception that does not unpickle, or that lost its type on the way,
    leaves an operator with a RaySystemError and no clue which callback failed where.""",
)
def failure_context(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    observed = [run for run in bench.every_run() if run.subject_raised]
    for run in observed:
        error = run.error
        assert error is not None
        call = failing_call(run)
        assert call is not None
        if not isinstance(error, Exception):
            continue  # errors.only-exceptions reports it
        notes = [n for n in getattr(error, "__notes__", None) or () if isinstance(n, str)]
        if not any(n.startswith(_NOTE_PREFIX) and repr(call.phase) in n for n in notes):
            raise CheckFailed(
                expected="the exception to carry the runner's note naming the callback and "
                f"phase {call.phase!r}",
                happened=f"in {call_site(call, run)} the caller got {describe_error(error)} "
                f"without that note (notes: {notes})",
                fix="raise a plain Exception subclass; do not override __notes__ or "
                "add_note on your exception class",
            )
        problem = _pickle_problem(error)
        if problem is not None:
            raise CheckFailed(
                expected="the exception to survive a pickle round trip with its type and message",
                happened=f"in {call_site(call, run)} it raised {describe_error(error)}; {problem}",
                fix="give custom exception classes an __init__ whose arguments are exactly "
                "what they pass to super().__init__ (or define __reduce__), so Ray can "
                "rebuild them on the caller's side",
            )
    if not observed:
        return f"not applicable: the callback raised nothing in {len(bench.every_run())} runs"
    return f"checked {len(observed)} failure(s)"


def _pickle_problem(error: BaseException) -> str | None:
    try:
        again = pickle.loads(pickle.dumps(error))
    except Exception as exc:
        return f"pickling it round trip raised {type(exc).__name__}: {exc}"
    if type(again) is not type(error) or str(again) != str(error):
        return f"it came back as {describe_error(again)}"
    return None


@check(
    "errors.host-failures",
    styles=(CALLBACK,),
    rule=(
        "When the host fails (download fails, placement group infeasible) the failure "
        "reaches the caller, neither swallowed nor rewrapped."
    ),
    why="""Ray Serve retries and reports replica failures by their type and message; a
    callback that swallows a failed download or rewraps a placement timeout makes a
    broken node look healthy, or makes a capacity problem look like a bug.""",
)
def host_failures(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    if not bench.faults():
        raise CheckSkipped(f"the {bench.cluster.name} cluster cannot inject host faults")
    require_completed(bench.lifecycle(), "see phases.lifecycle")
    notes = []
    for fault in bench.faults():
        baseline = bench.baseline(fault)
        if baseline.error is None:  # pragma: no cover - a broken fault injection
            raise CheckSkipped(f"injecting {fault} did not make initialize_node fail")
        run = bench.faulted(fault)
        problem = _masking(run, baseline)
        if problem is not None:
            raise CheckFailed(
                expected=f"with {fault} injected, initialize_node to fail with the host's own "
                f"error, as it does without the callback: {describe_error(baseline.error)}",
                happened=problem,
                fix="let errors from Ray and from the system propagate: if you must clean up, "
                "use try/finally or 'except Exception: cleanup(); raise', never return a "
                "fallback or raise a new exception in their place",
            )
        notes.append(f"{fault}: {'avoided' if run.error is None else type(run.error).__name__}")
    return "; ".join(notes)


def _masking(run: Run, baseline: Run) -> str | None:
    if run.error is None:
        if run.fault_fired:
            return (
                f"the fault was hit ({run.fault_fired}) yet initialize_node completed: the "
                "callback swallowed it"
            )
        return None
    if not run.subject_raised:
        return None  # the system raised: the host's failure reached the caller
    error = run.error
    call = failing_call(run)
    assert call is not None
    if _is_host_error(error, baseline):
        return None
    inner = next((e for e in _chain(error) if e is not error and _is_host_error(e, baseline)), None)
    if inner is not None:
        return (
            f"in {call_site(call, run)} the host's {describe_error(inner)} reached the caller "
            f"rewrapped as {describe_error(error)}"
        )
    return f"in {call_site(call, run)} the callback raised {describe_error(error)} in its place"


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_host_error(error: BaseException, baseline: Run) -> bool:
    """An error raised by Ray or by the system, not by the callback's own code."""
    if baseline.error is not None and isinstance(error, type(baseline.error)):
        return True
    module = type(error).__module__ or ""
    if module.split(".")[0] in ("ray", "reference_runner", "pytest_raycallbacks"):
        return True
    ray_exceptions = sys.modules.get("ray.exceptions")
    return ray_exceptions is not None and isinstance(error, ray_exceptions.RayError)


@check(
    "errors.leaves-nothing-behind",
    rule="Whatever happens, it leaves no placement group or actor of its own alive.",
    why="""A placement group or actor nobody owns holds GPUs until the cluster restarts;
    one leaked per failed replica start drains a GPU cluster in an afternoon.""",
)
def leaves_nothing_behind(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    for run in bench.every_run():
        if run.leaks:
            raise CheckFailed(
                expected="no placement group or actor created by the callback alive after "
                "initialize_node returned or raised",
                happened=f"after the {run.scenario} run "
                + (
                    "(which completed)"
                    if run.error is None
                    else f"(which raised {type(run.error).__name__})"
                )
                + ", still alive:\n"
                + "\n".join(run.leaks),
                fix=(
                    "remove every placement group and actor you create in a finally block "
                    "(ray.util.remove_placement_group, ray.kill); a group the engine should "
                    "use goes in self.ctx.placement_group"
                    if ctx.subject.style == CALLBACKBASE
                    else "hand every placement group you create to the system by putting it "
                    "in data['placement_group'] as soon as it exists, and remove anything else "
                    "you create in a finally block (ray.util.remove_placement_group, ray.kill)"
                ),
            )
    return None


@check(
    "errors.within-timeout",
    rule="Each call finishes within the per-call timeout (--raycallbacks-timeout).",
    why="""A replica that hangs in a callback holds its GPUs and never reports; the runner
    gives up after the timeout, so a slow callback is a failed replica start.""",
)
def within_timeout(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    limit = ctx.settings.timeout_s
    halt = ctx.subject.halted
    if halt is not None and DEADLINE_RULE in halt.still_run:  # judged on what was recorded
        raise CheckFailed(
            expected=f"every call to finish within {limit:g} s",
            happened=halt.reason
            + (f" (while {halt.check} ran; the kit ran no more of it after)" if halt.check else ""),
            fix=halt.fix,
        )
    slowest: tuple[float, str] = (0.0, "")
    for run in bench.every_run():
        for call in run.calls:
            if not call.finished or (call.duration_s or 0.0) > limit:
                took = "did not finish" if not call.finished else f"took {call.duration_s:.2f} s"
                raise CheckFailed(
                    expected=f"every call to finish within {limit:g} s",
                    happened=f"in {call_site(call, run)} it {took}",
                    fix="do slow work (waiting for resources, downloads) outside the callback "
                    "or asynchronously with its own bound; raise --raycallbacks-timeout only "
                    "if production allows it",
                )
            slowest = max(slowest, (call.duration_s or 0.0, call.phase))
        if isinstance(run.error, CallbackTimeoutError):  # pragma: no cover - caught above
            raise CheckFailed(
                expected=f"every call to finish within {limit:g} s",
                happened=str(run.error),
                fix="return promptly",
            )
    return f"slowest call: {slowest[0] * 1000:.1f} ms in {slowest[1]!r}" if slowest[1] else None
