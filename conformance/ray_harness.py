"""Running one ``CallbackBase`` scenario by Ray's own code, on a cluster, recorded.

For a ``CallbackBase`` subclass Ray is the judge (docs/design.md §Ray is the judge):
:func:`run_ray_scenario` builds Ray's own ``LLMConfig`` from the subject's deployment config
(:meth:`conformance.Subject.ray_llm_config`), starts one replica of it by Ray's code
(:func:`reference_runner.ray_replica.run_replica`: Serve's placement group, a replica task
in it, Ray's ``get_or_create_callback``, ``run_callback``, ``initialize_node`` and its
download tasks) on the cluster's scope (the fake one in memory, or a live one), and returns
a :class:`~conformance.harness.Run` whose calls are the steps Ray ran (recorded by
:class:`~conformance.ray_observer.StepRecorder`) and whose ``ray`` is the
:class:`~reference_runner.ray_replica.ReplicaStart`.

Every wait is bounded (the replica's placement, the start as a whole), the process state is
put back whatever the callback did, and what the callback left alive on the cluster is
reported as for every other scenario.
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import Any, Final

from reference_runner.ray_replica import (
    ReplicaStart,
    ReplicaStartTimeoutError,
    run_replica,
)

from .bounds import scenario_bound_s
from .cluster_api import Cluster
from .deadline import DeadlineExceeded, call_with_deadline
from .harness import Run
from .process_state import changes, restore, snapshot
from .ray_observer import StepRecorder, abandon, forget, progress
from .recorder import Call
from .subject import Subject

#: User-code calls in one start: the constructor, two hooks, the download hook.
RAY_START_CALLS: Final = 4


def run_ray_scenario(
    cluster: Cluster,
    subject: Subject,
    *,
    scenario: str,
    timeout_s: float,
    placement_timeout_s: float,
    torch_home: str | None = None,
) -> Run:
    """Start one replica of ``subject``'s deployment config on ``cluster`` by Ray's code
    and record it (see the module docstring). A ``BaseException`` that is not the
    callback's (Ctrl-C) propagates."""
    bound_s = scenario_bound_s(timeout_s, placement_timeout_s, timeout_s, calls=RAY_START_CALLS)
    with contextlib.ExitStack() as stack:
        home = torch_home or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="raycallbacks-torch-")
        )
        return _run(cluster, subject, scenario, timeout_s, placement_timeout_s, bound_s, home)


def _run(
    cluster: Cluster,
    subject: Subject,
    scenario: str,
    timeout_s: float,
    placement_timeout_s: float,
    bound_s: float,
    home: str,
) -> Run:
    recorder = StepRecorder(step_timeout_s=timeout_s)
    result: ReplicaStart | None = None
    error: BaseException | None = None
    with cluster.scope(None) as scope:
        reconnect = getattr(scope, "reconnect", None)
        state = snapshot()
        try:
            llm_config = subject.ray_llm_config()

            def start() -> ReplicaStart:
                return run_replica(
                    llm_config,
                    observer=recorder,
                    timeout_s=bound_s,
                    placement_timeout_s=placement_timeout_s,
                    torch_home=home,
                    runtime_env=replica_runtime_env(llm_config, cluster),
                )

            result = call_with_deadline(start, bound_s + placement_timeout_s + 5.0, what="start")
            error = result.error
        except DeadlineExceeded:
            abandon(recorder.token)
            error = ReplicaStartTimeoutError(_timeout_text(bound_s, progress(recorder.token)))
        except ReplicaStartTimeoutError as exc:
            abandon(recorder.token)
            steps = progress(recorder.token)
            error = ReplicaStartTimeoutError(f"{exc}{_where(steps)}") if steps else exc
        except Exception as exc:
            error = exc
        except BaseException:  # Ctrl-C meanwhile: the start's thread runs no more of Ray's steps
            abandon(recorder.token)
            raise
        finally:
            progress_steps = progress(recorder.token)
            lost = tuple(changes(state, snapshot()))  # also what a start that never
            restore(state, reconnect=reconnect)  # came back changed here
            forget(recorder.token)
        leaks = scope.leaks()
        resources = dict(scope.resources())
    shipped = result.observer if result is not None else None
    calls = list(shipped.calls) if isinstance(shipped, StepRecorder) else []
    seen = {(c.aspect, c.what) for call in calls for c in call.process}
    unseen = tuple(c for c in lost if (c.aspect, c.what) not in seen)
    if unseen:  # the steps that made them did not come back (or ran in a task of its own)
        calls.append(_whole_start_call(unseen, progress_steps))
    if result is not None and isinstance(shipped, StepRecorder):
        result.observer = shipped
    return Run(
        scenario=scenario,
        calls=calls,
        output=None,
        error=error,
        leaks=leaks,
        resources=resources,
        ray=result,
    )


def _whole_start_call(process: tuple[Any, ...], steps: list[str]) -> Call:
    """A recorded call standing for the whole start, holding process changes no recorded
    step accounts for (its phase: the last step begun, else the start itself)."""
    last = steps[-1].removesuffix(" (unfinished)") if steps else "replica start"
    call = Call(phase=last, known=True, before={}, inner={}, config_before={}, started=0.0)
    call.duration_s = 0.0
    call.process = process
    return call


def replica_runtime_env(llm_config: Any, cluster: Cluster) -> dict[str, Any]:
    """The replica's runtime env: the deployment's (as Serve gives it), plus the variables
    the cluster's workers need for what the run stands in for the network (the local S3's
    endpoint, ``worker_env_vars`` of a live cluster), which Ray passes on to the tasks the
    replica starts (a task's ``env_vars`` are merged into its parent's)."""
    env = dict(llm_config.runtime_env or {})
    extra = dict(getattr(cluster, "worker_env_vars", None) or {})
    if extra:
        env["env_vars"] = {**extra, **dict(env.get("env_vars") or {})}
    return env


def _where(steps: list[str]) -> str:
    return "; Ray's steps so far: " + ", ".join(steps)


def _timeout_text(bound_s: float, steps: list[str]) -> str:
    return (
        f"the replica's start did not finish within {bound_s:g} s, the bound on one whole "
        "start (every hook and wait at its limit)" + (_where(steps) if steps else "")
    )


def scenario_steps(run: Run) -> tuple[str, ...]:
    """The steps Ray ran in ``run`` (empty when it never reached the replica)."""
    ray = getattr(run, "ray", None)
    return tuple(ray.steps) if ray is not None else ()
