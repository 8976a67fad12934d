"""Merge rules: what the callback puts into ``data`` is well-typed, its own, and used."""

from __future__ import annotations

import difflib
from typing import Any, Final

from conformance.context import CheckContext
from conformance.failure import CheckFailed, describe
from conformance.harness import NEIGHBOUR_KEY, Run
from conformance.recorder import Call
from conformance.registry import CALLBACK, check
from conformance.runs import call_site, require_completed, return_problem, written
from reference_runner import PHASES, SYSTEM_KEYS
from reference_runner.phases import PRE_DOWNLOAD, PRE_ENGINE_INIT
from reference_runner.reserved import (
    CALLBACK_RESERVED_KEYS,
    EXTRA_INIT_KWARGS,
    LOCAL_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RESERVED_KEY_SET,
    RUNTIME_ENV,
    SKIP_DEFAULT_INIT,
    WORKER_NODE_DOWNLOAD_MODEL,
    reserved_key_problem,
)

#: The last phase in which setting a key still changes what initialize_node does (the
#: system serves the placement group, downloading what ``worker_node_download_model`` asks
#: for then, after ``post_placement_group`` and again after ``pre_engine_init``).
DEADLINES: Final = {
    SKIP_DEFAULT_INIT: PRE_DOWNLOAD,
    LOCAL_NODE_DOWNLOAD_MODEL: PRE_DOWNLOAD,
    WORKER_NODE_DOWNLOAD_MODEL: PRE_ENGINE_INIT,
    PLACEMENT_GROUP: PRE_ENGINE_INIT,
}
_EXAMPLES: Final = {
    LOCAL_NODE_DOWNLOAD_MODEL: "NodeModelDownloadable.TOKENIZER_ONLY (or 'TOKENIZER_ONLY')",
    WORKER_NODE_DOWNLOAD_MODEL: "NodeModelDownloadable.MODEL_AND_TOKENIZER",
    PLACEMENT_GROUP: "ray.util.placement_group([{'GPU': 1}])",
    RUNTIME_ENV: "{'env_vars': {'NAME': 'value'}}",
    EXTRA_INIT_KWARGS: "{'max_model_len': 4096}",
    SKIP_DEFAULT_INIT: "True",
}


def _runs(ctx: CheckContext) -> list[Run]:
    return ctx.require_bench().lifecycles()


@check(
    "merge.return-type",
    styles=(CALLBACK,),
    rule="Every call returns None or a mapping with str keys.",
    why="""The runner merges the return value into the shared data; anything else (a list,
    a bool, a mapping with non-str keys) is rejected and stops the replica's start-up.""",
)
def return_type(ctx: CheckContext) -> str | None:
    for run in _runs(ctx):
        for call in run.calls:
            if not call.finished or call.error is not None:
                continue
            problem = return_problem(call.returned)
            if problem:
                raise CheckFailed(
                    expected="None, or a dict with str keys to merge into data",
                    happened=f"in {call_site(call, run)} it {problem}",
                    fix="return None when there is nothing to set, else a dict such as "
                    "{'extra_init_kwargs': {...}}",
                )
    return None


@check(
    "merge.reserved-types",
    styles=(CALLBACK,),
    rule=(
        "Every reserved key it sets, returned or written in place, holds the type the "
        "runner expects for it."
    ),
    why="""Reserved keys drive the download, the placement group and the engine; a wrong
    type fails (or misconfigures) the replica at the point the system reads it, far from
    the callback that set it.""",
)
def reserved_types(ctx: CheckContext) -> str | None:
    for run in _runs(ctx):
        for call in run.calls:
            if not call.finished:
                continue
            after = call.after if call.after is not None else call.before
            added, changed, _ = call.in_place()
            candidates = [
                *(("returned", k, v) for k, v in call.returned_mapping().items()),
                *(("wrote in place", k, after[k]) for k in (*added, *changed)),
                *(("changed inside", k, after[k]) for k in call.changed_inside()),
            ]
            for how, key, value in candidates:
                if key not in CALLBACK_RESERVED_KEYS:
                    continue
                problem = reserved_key_problem(key, value)
                if problem is not None:
                    raise CheckFailed(
                        expected=f"data[{key!r}] to be {problem}",
                        happened=f"in {call_site(call, run)} it {how} data[{key!r}] = "
                        f"{describe(value)}",
                        fix=f"set {key!r} to a value such as {_EXAMPLES[key]}",
                    )
    return None


@check(
    "merge.ownership",
    styles=(CALLBACK,),
    rule=(
        "It never deletes or replaces keys set by the system or other callbacks, except "
        "reserved keys meant to be overridden."
    ),
    why="""Callbacks from different teams share one data dict on the replica; deleting or
    overwriting another's key (or the system's download_result) breaks them in ways no
    single callback's tests show.""",
)
def ownership(ctx: CheckContext) -> str | None:
    for run in _runs(ctx):
        mine: set[str] = set()
        for call in run.calls:
            if not call.finished:
                continue
            problem = _ownership_problem(call.before, call, mine)
            if problem is not None:
                raise CheckFailed(
                    expected="keys set by the system or by other callbacks left in place "
                    f"(reserved keys other than {sorted(SYSTEM_KEYS)} may be overridden)",
                    happened=f"in {call_site(call, run)} it {problem}",
                    fix="read others' keys, never delete or replace them; keep your own state "
                    "under keys of your own (e.g. 'myteam.state'); add to extra_init_kwargs "
                    "rather than replacing it",
                )
            mine.update(written(call))
    return None


def _ownership_problem(before: dict[str, Any], call: Call, mine: set[str]) -> str | None:
    """What the call did to keys it does not own, or ``None``."""
    others = {k for k in before if k not in mine}
    added, changed, removed = call.in_place()
    returned = call.returned_mapping()
    inside = call.changed_inside()
    touched = {*added, *changed, *removed, *inside, *(k for k in returned if isinstance(k, str))}
    for key in sorted(SYSTEM_KEYS & touched):
        return f"wrote data[{key!r}], which only the system writes"
    for key in sorted(others - CALLBACK_RESERVED_KEYS):
        if key in removed:
            return f"deleted data[{key!r}], set by {_owner(key)}"
        if key in changed or (key in returned and returned[key] is not before[key]):
            return (
                f"replaced data[{key!r}], set by {_owner(key)}, with {describe(written(call)[key])}"
            )
        if key in inside:
            return f"changed the content of data[{key!r}], set by {_owner(key)}"
    for key in sorted(others & set(removed)):
        return (
            f"deleted data[{key!r}], set by {_owner(key)}; reserved keys may be overridden, "
            "not deleted"
        )
    return None


def _owner(key: str) -> str:
    return "another callback" if key == NEIGHBOUR_KEY else "the system"


@check(
    "merge.config-untouched",
    styles=(CALLBACK,),
    rule="It never changes the config it is given.",
    why="""The same LLMConfig object is shared by every callback and by the engine on the
    replica (and reused across restarts); changing it changes the deployment behind the
    back of whoever wrote the config.""",
)
def config_untouched(ctx: CheckContext) -> str | None:
    for run in _runs(ctx):
        for call in run.calls:
            if call.config_changes:
                raise CheckFailed(
                    expected="the config to be the same after every call",
                    happened=f"in {call_site(call, run)} it changed config field(s) "
                    f"{', '.join(call.config_changes)}",
                    fix="treat the config as read-only: put what you want to change into "
                    "data (extra_init_kwargs, runtime_env, ...) or work on "
                    "config.model_copy(update=...)",
                )
    return None


@check(
    "merge.reaches-output",
    styles=(CALLBACK,),
    rule=(
        "What it sets takes effect: reserved keys set in time and reflected in "
        "initialize_node's output, no misspelt reserved keys."
    ),
    why="""A key set after the system read it, or a near-miss of a reserved name, is
    silently ignored: the replica starts, just not the way the callback intended.""",
)
def reaches_output(ctx: CheckContext) -> str | None:
    run = require_completed(ctx.require_bench().lifecycle(), "see phases.lifecycle")
    last: dict[str, tuple[str, Any]] = {}
    for call in run.known_calls:
        for key, value in written(call).items():
            late = key in DEADLINES and PHASES.index(call.phase) > PHASES.index(DEADLINES[key])
            if late and not _equal(value, call.before.get(key, _ABSENT)):
                raise CheckFailed(
                    expected=f"data[{key!r}] to be set no later than phase "
                    f"{DEADLINES[key]!r}, when the system reads it",
                    happened=f"it set data[{key!r}] = {describe(value)} in phase "
                    f"{call.phase!r}, too late to have any effect",
                    fix=f"set {key!r} in phase {DEADLINES[key]!r} or earlier",
                )
            typo = _near_miss(key)
            if typo is not None:
                raise CheckFailed(
                    expected="only reserved keys to drive initialization: "
                    + ", ".join(sorted(CALLBACK_RESERVED_KEYS)),
                    happened=f"in phase {call.phase!r} it set data[{key!r}], which nothing "
                    f"reads; it looks like the reserved key {typo!r}",
                    fix=f"rename the key to {typo!r}",
                )
            last[key] = (call.phase, value)
    output = run.output
    assert output is not None
    checks = {
        RUNTIME_ENV: lambda v: _equal(output.runtime_env, v),
        EXTRA_INIT_KWARGS: lambda v: _equal(output.extra_init_kwargs, dict(v) if v else {}),
        PLACEMENT_GROUP: lambda v: output.placement_group is v,
    }
    for key, (phase, value) in last.items():
        if key in checks and not checks[key](value):
            raise CheckFailed(
                expected=f"the {key} it set (in phase {phase!r}) in initialize_node's output",
                happened=f"it set {describe(value)}; the output has "
                f"{describe(getattr(output, key))}",
                fix="set the key once, in its phase, and do not delete it later",
            )
    return None


_ABSENT: Final = object()


def _equal(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:
        return False


def _near_miss(key: str) -> str | None:
    if key in RESERVED_KEY_SET or key == NEIGHBOUR_KEY:
        return None
    lowered = key.lower().replace("-", "_").replace(" ", "_")
    if lowered in CALLBACK_RESERVED_KEYS:
        return lowered
    close = difflib.get_close_matches(lowered, sorted(CALLBACK_RESERVED_KEYS), n=1, cutoff=0.85)
    return close[0] if close else None
