"""Cluster rules: on every requested cluster the callback initializes a node for real.

On the fake cluster these read the recorded lifecycle run (``initialize_node`` in process,
Ray's API served in memory). On a live cluster ``initialize_node`` runs inside a Ray actor
with the callback loaded there from its import path, as a serving replica does.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any, cast

from conformance.cluster_api import WorkerCluster, WorkerRun
from conformance.context import CheckContext
from conformance.failure import CheckFailed, CheckSkipped, describe, describe_error
from conformance.harness import Run, config_with
from conformance.registry import CALLBACK, check
from conformance.runs import failing_call, why_failed, written
from reference_runner import PHASES, PlacementGroupTimeoutError
from reference_runner.reserved import PLACEMENT_GROUP, RUNTIME_ENV


def _worker_run(ctx: CheckContext) -> WorkerRun:
    bench = ctx.require_bench()
    cached = bench.recall("worker-run")
    if cached is not None:
        return cast(WorkerRun, cached)
    cluster = cast(WorkerCluster, ctx.require_cluster())
    config = config_with(ctx.settings.base_config(), [ctx.subject.config_entry()])
    run = cluster.run_in_worker(config, timeout_s=ctx.settings.timeout_s)
    return cast(WorkerRun, bench.remember("worker-run", run))


def _is_live(ctx: CheckContext) -> bool:
    return ctx.require_cluster().name == "live"


@check(
    "cluster.initialize-node",
    styles=(CALLBACK,),
    rule="initialize_node with the callback completes on the cluster and leaves nothing behind.",
    why="""This is what a serving replica does at start-up; everything else in the
    catalogue is there to make this succeed on the real thing.""",
    runs_on="each-cluster",
)
def initialize_node_completes(ctx: CheckContext) -> str | None:
    if _is_live(ctx):
        worker = _worker_run(ctx)
        if worker.error is not None:
            raise CheckFailed(
                expected="initialize_node, run in a Ray actor with the callback loaded from "
                f"{ctx.subject.spec!r}, to complete",
                happened=f"it raised {describe_error(worker.error)}",
                fix=_fix_for(worker.error),
            )
        if worker.leaks:
            raise CheckFailed(
                expected="nothing of the run left alive on the cluster",
                happened="still alive:\n" + "\n".join(worker.leaks),
                fix="hand placement groups over in data['placement_group']; remove the rest",
            )
        return "completed in a Ray actor on the live cluster"
    run = ctx.require_bench().lifecycle()
    problem = why_failed(run)
    if problem is not None:
        raise CheckFailed(
            expected="initialize_node with the callback to complete on the fake cluster",
            happened=problem,
            fix=_fix_for(run.error),
        )
    return None


def _fix_for(error: BaseException | None) -> str:
    if isinstance(error, PlacementGroupTimeoutError):
        return "ask for a placement group the cluster can hold (see cluster.placement-group)"
    if isinstance(error, ImportError):
        return (
            "make the module importable on the cluster's workers: install it there, or ship "
            "it with runtime_env={'py_modules': [...]} / working_dir"
        )
    return "see the error above; the phases and merge checks name the rule behind it"


@check(
    "cluster.placement-group",
    styles=(CALLBACK,),
    rule=(
        "A placement group it supplies is valid, fits what the config's engine needs, and "
        "can be placed on the cluster."
    ),
    why="""A group the cluster cannot hold stays pending forever on Ray: the replica waits,
    holds nothing and never starts; one smaller than the engine needs fails later, inside
    the engine.""",
    runs_on="each-cluster",
)
def placement_group(ctx: CheckContext) -> str | None:
    config = ctx.settings.base_config()
    needed = sum(b.get("GPU", 0.0) for b in config.placement_bundles())
    if _is_live(ctx):
        worker = _worker_run(ctx)
        supplied = _supplied_in_trace(worker.trace)
        if isinstance(worker.error, PlacementGroupTimeoutError):
            raise CheckFailed(
                expected="its placement group to be placed on the live cluster",
                happened=str(worker.error),
                fix=_FIX_SIZE,
            )
        if not supplied:
            return "not applicable: it supplies no placement group"
        _check_size(list(worker.bundles), needed, config)
        return f"placed {list(worker.bundles)} ({worker.strategy})"
    run = ctx.require_bench().lifecycle()
    group = _supplied(run)
    if isinstance(run.error, PlacementGroupTimeoutError):
        raise CheckFailed(
            expected="the placement group to be placed on the fake cluster "
            f"(total resources {_fmt(run.resources)})",
            happened=str(run.error),
            fix=_FIX_SIZE,
        )
    call = failing_call(run)
    if call is not None and call.error is not None and _raised_by_placement_group(call.error):
        raise CheckFailed(
            expected="ray.util.placement_group(...) in the callback to accept its arguments",
            happened=f"in phase {call.phase!r} it raised {describe_error(call.error)}",
            fix="give each bundle at least one positive resource, and use one of the "
            "strategies PACK, SPREAD, STRICT_PACK, STRICT_SPREAD",
        )
    if group is None:
        return "not applicable: it supplies no placement group"
    bundles = list(getattr(group, "bundle_specs", []) or [])
    _check_size(bundles, needed, config)
    return f"placed {bundles}"


_FIX_SIZE = (
    "size bundles from the config (config.num_devices GPUs, one bundle per device) and the "
    "nodes you deploy on; do not ask one bundle for more than a node has"
)


def _check_size(bundles: list[Mapping[str, float]], needed: float, config: Any) -> None:
    supplied = sum(float(b.get("GPU", 0.0)) for b in bundles)
    if supplied < needed:
        raise CheckFailed(
            expected=f"at least {needed:g} GPU(s) in the placement group: the config's engine "
            f"needs {config.num_devices} device(s) (default bundles "
            f"{config.placement_bundles()})",
            happened=f"it supplied bundles {bundles}, {supplied:g} GPU(s) in all",
            fix="build the bundles from the config (one {'GPU': 1} bundle per "
            "config.num_devices), or change the config's engine_kwargs to match",
        )


def _supplied(run: Run) -> Any:
    group = None
    for call in run.known_calls:
        value = written(call).get(PLACEMENT_GROUP)
        if value is not None:
            group = value
    return group


def _supplied_in_trace(trace: tuple[Any, ...]) -> bool:
    return any(
        getattr(e, "index", -1) >= 0 and PLACEMENT_GROUP in (*e.added, *e.changed) for e in trace
    )


def _raised_by_placement_group(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return any(f.name == "placement_group" for f in frames)


def _fmt(resources: Mapping[str, float]) -> str:
    shown = {
        k: v
        for k, v in sorted(resources.items())
        if not k.startswith(("node:", "memory", "object_store"))
    }
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in shown.items()) + "}"


@check(
    "cluster.final-group-has-model",
    styles=(CALLBACK,),
    rule=(
        "Every node of the final placement group holds the model files "
        "worker_node_download_model asks for (unless skip_default_init)."
    ),
    why="""The engine starts on the final placement group and loads the model from each of
    its nodes' disks; a node without the files (a group swapped in too late for the system to
    download onto it, files removed by a cleanup) fails the engine on the cluster, never in
    a one-node test.""",
    runs_on="each-cluster",
)
def final_group_has_model(ctx: CheckContext) -> str | None:
    if _is_live(ctx):
        worker = _worker_run(ctx)
        if worker.error is not None:
            raise CheckSkipped("initialize_node failed in the worker (see cluster.initialize-node)")
        if worker.model_check_error is not None:
            raise CheckSkipped(
                f"the nodes' model files could not be listed: {worker.model_check_error}"
            )
        missing = worker.missing_model
        where = "on the live cluster (a task on each node of the group listed its files)"
    else:
        run = ctx.require_bench().lifecycle()
        if run.error is not None:
            raise CheckSkipped(f"the first lifecycle did not complete ({why_failed(run)})")
        missing = run.missing_model
        where = "on the fake cluster (the files each node's download left on disk)"
    if missing is None:
        return "not applicable: skip_default_init was set"
    if missing:
        raise CheckFailed(
            expected="every node of the final placement group to hold the model files "
            "worker_node_download_model asks for when initialize_node ends",
            happened=f"{where}, these nodes lack them:\n"
            + "\n".join(f"node {node}: {_short(what)}" for node, what in sorted(missing.items())),
            fix="hand a replacement placement group over (and widen worker_node_download_model) "
            "in pre_engine_init at the latest: the system downloads onto the nodes of the group "
            "it finds in data after post_placement_group and after pre_engine_init, never after "
            "post_initialization; and never delete or move downloaded model files",
        )
    return None


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@check(
    "cluster.runtime-env",
    styles=(CALLBACK,),
    rule=(
        "A runtime_env it sets is one Ray accepts: known fields, valid values, local "
        "paths that exist."
    ),
    why="""The engine's workers start with this runtime env; one Ray rejects fails every
    worker start on the cluster, after the placement group was already taken.""",
    runs_on="each-cluster",
)
def runtime_env(ctx: CheckContext) -> str | None:
    run = ctx.require_bench().lifecycle()
    env = None
    for call in run.known_calls:
        env = written(call).get(RUNTIME_ENV, env)
    if env is None:
        return "not applicable: it sets no runtime_env"
    problem = _runtime_env_problem(env)
    if problem is not None:
        raise CheckFailed(
            expected="a runtime_env Ray accepts",
            happened=f"it set runtime_env = {describe(env)}: {problem}",
            fix="use Ray's runtime env fields (env_vars with str values, working_dir and "
            "py_modules pointing at existing folders or URIs, pip, ...)",
        )
    if _is_live(ctx):
        cluster = cast(WorkerCluster, ctx.require_cluster())
        try:
            cluster.check_runtime_env(env, timeout_s=ctx.settings.timeout_s)
        except Exception as exc:
            raise CheckFailed(
                expected="a task started with this runtime_env to run on the live cluster",
                happened=f"{describe_error(exc)}",
                fix="fix the runtime env so that Ray can set it up on every node",
            ) from None
        return "a task ran with it on the live cluster"
    return None


def _runtime_env_problem(env: Any) -> str | None:
    from pathlib import Path

    from ray.runtime_env import RuntimeEnv

    if not isinstance(env, Mapping):
        return "it is not a mapping"
    try:
        RuntimeEnv(**dict(env))
    except Exception as exc:
        return f"Ray rejected it: {type(exc).__name__}: {exc}"
    unknown = sorted(set(env) - set(RuntimeEnv.known_fields))
    if unknown:
        return (
            f"Ray has no runtime env field(s) {unknown} (known: {sorted(RuntimeEnv.known_fields)})"
        )
    paths = [env.get("working_dir"), *(env.get("py_modules") or [])]
    for path in paths:
        if isinstance(path, str) and "://" not in path and not Path(path).exists():
            return f"the local path {path!r} does not exist, so Ray cannot upload it"
    return None


@check(
    "cluster.in-worker",
    styles=(CALLBACK,),
    rule="Loaded by its path inside a Ray worker, it behaves as it does in the driver.",
    why="""On the cluster the callback is imported by a worker, with the worker's
    environment, working directory and sys.path; anything that differs (a config file read
    from the driver's cwd, an env var only the driver has) shows up here first.""",
    runs_on="each-cluster",
    clusters=("live",),
)
def in_worker(ctx: CheckContext) -> str | None:
    worker = _worker_run(ctx)
    if worker.error is not None:
        raise CheckSkipped("initialize_node failed in the worker (see cluster.initialize-node)")
    driver = ctx.require_bench().lifecycle()
    if driver.error is not None:
        raise CheckSkipped(f"initialize_node failed in the driver: {why_failed(driver)}")
    in_driver: dict[str, set[str]] = {}
    for call in driver.known_calls:
        in_driver.setdefault(call.phase, set()).update(written(call))
    in_worker: dict[str, set[str]] = {}
    for entry in worker.trace:
        if getattr(entry, "index", -1) >= 0:
            in_worker.setdefault(entry.phase, set()).update((*entry.added, *entry.changed))
    lines = [
        f"in phase {phase!r} it set {sorted(in_worker.get(phase, set()))} in the worker but "
        f"{sorted(in_driver.get(phase, set()))} in the driver"
        for phase in PHASES
        if in_worker.get(phase, set()) != in_driver.get(phase, set())
    ]
    output = driver.output
    assert output is not None
    if dict(worker.extra_init_kwargs) != dict(output.extra_init_kwargs):
        lines.append(
            f"extra_init_kwargs: {dict(worker.extra_init_kwargs)!r} in the worker, "
            f"{dict(output.extra_init_kwargs)!r} in the driver"
        )
    if lines:
        raise CheckFailed(
            expected="the same keys in the same phases, and the same output, in a Ray worker "
            "as in the driver",
            happened="\n".join(lines),
            fix="do not depend on the driver's working directory, environment variables or "
            "files; pass what the callback needs through the config or runtime_env",
        )
    return None
