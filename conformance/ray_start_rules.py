"""Judging a replica start that Ray's own code ran (:mod:`conformance.ray_harness`).

The functions read a :class:`~conformance.harness.Run` whose calls are Ray's steps
(:data:`reference_runner.ray_replica.ENGINE_START_STEPS`) and speak the ``CallbackBase`` API
(the hook, ``self.ctx``, ``self.kwargs``, ``callback_config``), never ``data``:

* :func:`start_failure`: why the start did not complete, as a
  :class:`~conformance.failure.CheckFailed` naming the step Ray was in, Ray's message and
  the hook's own error, or as an :class:`~conformance.failure.Inconclusive` when the cause
  is missing from this environment (:func:`conformance.environment_gaps.environment_gap`);
  ``None`` when it completed.
* :func:`raised_problems`: what was wrong with what the hooks raised, whatever Ray made of
  it (a ``BaseException`` Ray does not catch; an error that does not survive pickling).
* :func:`step_name`: a step as a message names it.
"""

from __future__ import annotations

from typing import Any, Final

from reference_runner.ray_replica import (
    CHAIN_ATTRIBUTE,
    CONSTRUCT,
    DOWNLOAD_HOOK,
    INITIALIZE_NODE,
    ON_AFTER_NODE_INIT,
    ON_BEFORE_NODE_INIT,
    ReplicaPlacementError,
    ReplicaStartTimeoutError,
    UnpicklableError,
)

from .environment_gaps import environment_gap
from .failure import CheckFailed, Inconclusive, describe_error
from .harness import Run
from .ray_observer import StepTimeoutError
from .ray_steps import step_name
from .recorder import Call

_HOOK_FIX: Final = (
    "fix the cause in {hook} (its own error is above), or catch inside the hook what it can "
    "handle; set raise_error_on_callback: false in callback_config only if a replica may "
    "start without the hook's work"
)


def failing_step(run: Run) -> Call | None:
    """The last step of ``run`` that raised (the one that ended the start)."""
    return next((c for c in reversed(run.calls) if c.error is not None), None)


def _cause_text(error: BaseException) -> str:
    """The chain behind ``error`` (Ray's wrapper, the hook's own error...), one per line."""
    links = getattr(error, CHAIN_ATTRIBUTE, None)
    if not isinstance(links, list) or len(links) < 2:
        cause = error.__cause__
        return f"\ncaused by {describe_error(cause)}" if cause is not None else ""
    lines = []
    for link in links[1:]:
        name = link.get("type", "?")
        module = link.get("module")
        if module and module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        where = f" at {link['where']}" if link.get("where") else ""
        note = f" ({link['note']})" if link.get("note") else ""
        lines.append(f"caused by {name}: {link.get('message', '')}{note}{where}")
    return "\n" + "\n".join(lines)


def _download_hook_failed(error: BaseException) -> bool:
    text = str(error) + "".join(
        str(link.get("message", "")) for link in getattr(error, CHAIN_ATTRIBUTE, None) or ()
    )
    return f"'{DOWNLOAD_HOOK}'" in text


def _ctx_text(run: Run) -> str:
    ctx = getattr(run.ray, "ctx", None)
    if not ctx:
        return ""
    shown = ", ".join(f"{k}={v!r}" for k, v in ctx.items() if k != "custom_data")
    return f"\nself.ctx when it stopped: {shown}"


def _uris(value: Any) -> list[str]:
    """Every ``s3://``/``gs://`` URI anywhere in ``value`` (the callback_kwargs)."""
    if isinstance(value, str):
        return [value] if value.startswith(("s3://", "gs://")) else []
    if isinstance(value, dict):
        return [u for v in value.values() for u in _uris(v)]
    if isinstance(value, list | tuple):
        return [u for v in value for u in _uris(v)]
    return []


def missing_bucket_note(error: BaseException, callback_kwargs: Any) -> str | None:
    """For a ``NoSuchBucket`` error whose own text does not name the bucket (it crossed
    from a Ray worker, which keeps only the messages): the buckets the callback's
    ``callback_kwargs`` name, one of which the storage does not have."""
    text = str(error) + " ".join(
        str(link.get("message", "")) + str(link.get("note") or "")
        for link in getattr(error, CHAIN_ATTRIBUTE, None) or ()
    )
    if "NoSuchBucket" not in text and "does not exist" not in text:
        return None
    buckets = list(
        dict.fromkeys(u.split("://", 1)[1].split("/", 1)[0] for u in _uris(callback_kwargs))
    )
    named = [b for b in buckets if f"'{b}'" in text]
    if named or not buckets:
        return None
    if len(buckets) == 1:
        return (
            f"the bucket {buckets[0]!r} does not exist on the storage endpoint: it is the one "
            "the callback_kwargs name"
        )
    shown = ", ".join(repr(b) for b in buckets)
    return f"one of the buckets the callback_kwargs name ({shown}) does not exist on the storage"


def start_failure(
    run: Run, spec: str, callback_kwargs: Any = None
) -> CheckFailed | Inconclusive | None:
    """Why the replica start ``run`` did not complete (see the module docstring);
    ``callback_kwargs`` (the subject's) let a storage error name its bucket."""
    error = run.error
    if error is None:
        return None
    call = failing_step(run)
    step = call.phase if call is not None else None
    where = step_name(step) if step is not None else "the replica's start"
    if step == INITIALIZE_NODE and _download_hook_failed(error):
        where = f"the hook {DOWNLOAD_HOOK} (in Ray's download task)"
    if isinstance(error, ReplicaPlacementError):
        return Inconclusive(
            needs=f"a cluster that holds the deployment's placement group ({error})",
            where=f"the replica of {spec}, before Ray built the callback",
            todo="certify on a cluster as large as the deployment's "
            "(--raycallbacks-ray-address ADDR), or check the deployment's "
            "placement_group_config and engine_kwargs (tensor_parallel_size x "
            "pipeline_parallel_size GPUs)",
        )
    gap = environment_gap(error, where=f"{where} of {spec}")
    if gap is not None:
        return gap
    expected = (
        f"Ray's engine start ({run.scenario}) to build {spec} and run its hooks and "
        "initialize_node without an error"
    )
    happened = f"{where} raised {describe_error(error)}{_cause_text(error)}{_ctx_text(run)}"
    bucket = missing_bucket_note(error, callback_kwargs)
    if bucket is not None:
        happened += f"\n({bucket})"
    if isinstance(error, ReplicaStartTimeoutError | StepTimeoutError):
        return CheckFailed(
            expected=expected,
            happened=str(error),
            fix="return promptly from the constructor and the hooks: await slow work with "
            "its own bound, never block on a lock, a server or the network without a "
            "timeout; raise --raycallbacks-timeout only if production allows it",
        )
    if step == CONSTRUCT:
        fix = (
            "make __init__(self, **kwargs) take its options from callback_kwargs by keyword "
            "(self.kwargs holds the rest) and call super().__init__(**kwargs); validate "
            "callback_kwargs with a clear message"
        )
    elif step in (ON_BEFORE_NODE_INIT, ON_AFTER_NODE_INIT):
        fix = _HOOK_FIX.format(hook=step)
    elif step == INITIALIZE_NODE and _download_hook_failed(error):
        fix = _HOOK_FIX.format(hook=DOWNLOAD_HOOK)
    elif step == INITIALIZE_NODE:
        fix = (
            "Ray's initialize_node reads self.ctx as on_before_node_init left it: keep "
            "ctx.placement_group a placed Ray placement group, ctx.runtime_env a runtime "
            "env Ray accepts and ctx.worker_node_download_model a NodeModelDownloadable "
            "member (or set ctx.run_init_node = False to skip it)"
        )
    else:
        fix = "see the error above: it is Ray's, raised before the callback ran"
    return CheckFailed(expected=expected, happened=happened, fix=fix)


def raised_problems(run: Run) -> list[str]:
    """What is wrong with what the steps raised (see the module docstring)."""
    problems: list[str] = []
    for call in run.calls:
        exc = call.error
        if exc is None:
            continue
        where = step_name(call.phase)
        if not isinstance(exc, Exception):
            problems.append(
                f"{where} raised {type(exc).__name__}, a BaseException that Ray's "
                "run_callback does not catch: it ends the replica's process outright, "
                "whatever raise_error_on_callback says. Raise an Exception (e.g. "
                "RuntimeError) instead"
            )
        elif isinstance(exc, UnpicklableError):
            problems.append(
                f"{where} raised an error that does not survive pickling ({exc}); errors "
                "reach the replica and the caller pickled, so this one arrives as a "
                "serialization error instead. Give the exception class an __init__ whose "
                "arguments are its args, or define __reduce__"
            )
    return problems
