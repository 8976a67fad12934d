"""Reading a recorded :class:`~conformance.harness.Run`: what failed, what was written.

Shared by the category modules so each check states its rule and leaves the bookkeeping
here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reference_runner import CallbackReturnError, CallbackTimeoutError
from reference_runner.ray_replica import ENGINE_START_STEPS

from .failure import CheckSkipped, describe, describe_error
from .harness import Run
from .ray_steps import step_name
from .recorder import Call


def return_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid return value (``None`` or a mapping with str keys)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"returned {describe(value)}"
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        return f"returned a mapping with non-str keys {bad!r}"
    return None


def failing_call(run: Run) -> Call | None:
    """The call whose exception ended ``run``, if the callback raised it."""
    return next((c for c in run.calls if c.error is not None and c.error is run.error), None)


def why_failed(run: Run) -> str | None:
    """One paragraph on why ``run`` did not complete, or ``None`` when it did."""
    if run.error is None:
        return None
    call = failing_call(run)
    if call is not None:
        return (
            f"in phase {call.phase!r} ({run.scenario}) the callback raised "
            f"{describe_error(run.error)}"
        )
    for call in run.calls:
        problem = return_problem(call.returned) if call.finished and call.error is None else None
        if problem:
            return f"in phase {call.phase!r} ({run.scenario}) the callback {problem}"
    if isinstance(run.error, CallbackTimeoutError):
        return f"{run.scenario}: {run.error}"
    if isinstance(run.error, CallbackReturnError):
        return f"{run.scenario}: {describe_error(run.error)}"
    last = run.calls[-1].phase if run.calls else "none"
    return (
        f"{run.scenario}: initialize_node raised {describe_error(run.error)} "
        f"(the callback's last phase: {last!r})"
    )


def written(call: Call) -> dict[str, Any]:
    """Keys the call set, returned or written in place, with their values after it."""
    after = call.after if call.after is not None else call.before
    added, changed, _ = call.in_place()
    values = {k: after[k] for k in (*added, *changed)}
    values.update({k: v for k, v in call.returned_mapping().items() if isinstance(k, str)})
    return values


def require_completed(run: Run, because: str) -> Run:
    """``run`` if it completed, else skip the check, naming the rule that covers it."""
    if run.error is not None:
        raise CheckSkipped(f"the {run.scenario} did not complete ({because})")
    return run


def call_site(call: Call, run: Run) -> str:
    """Where in ``run`` the ``call`` happened, for messages: ``phase 'x' (first lifecycle)``,
    or for a step of Ray's engine start ``the hook on_before_node_init (first replica
    start)``."""
    if run.ray is not None or call.phase in ENGINE_START_STEPS:
        return f"{step_name(call.phase)} ({run.scenario})"
    return f"phase {call.phase!r} ({run.scenario})"
