"""Process rules: a callback leaves the replica's process as it found it.

Every call of every scenario is recorded with what it changed in the process
(:mod:`conformance.process_state`: the Ray connection, ``os.environ``, the working directory,
``sys.path``), and that state is put back right after the call, so one callback's change never
reaches the next phase's snapshot or the next check. These rules read what was recorded.
"""

from __future__ import annotations

from conformance.context import CheckContext
from conformance.failure import CheckFailed
from conformance.process_state import ENVIRONMENT, IMPORT_PATH, RAY_CONNECTION, WORKING_DIRECTORY
from conformance.registry import CALLBACKBASE, check
from conformance.runs import call_site

_LISTED = 3


def _changed(ctx: CheckContext, aspect: str) -> list[str]:
    """``phase 'x' (first lifecycle): <what changed>`` for each call that changed ``aspect``."""
    found = []
    for run in ctx.require_bench().every_run():
        for call in run.calls:
            for change in call.process:
                if change.aspect == aspect:
                    found.append(f"in {call_site(call, run)} {change.what}")
    return found


def _require_unchanged(ctx: CheckContext, aspect: str, *, expected: str, fix: str) -> None:
    """Fail, listing the first calls that changed ``aspect``, if any call changed it."""
    found = _changed(ctx, aspect)
    if not found:
        return
    more = len(found) - _LISTED
    happened = "\n".join(found[:_LISTED]) + (f"\n(and {more} more call(s))" if more > 0 else "")
    raise CheckFailed(expected=expected, happened=happened, fix=fix)


@check(
    "process.ray-connection",
    rule=(
        "The driver's Ray connection is the same before and after every call: no "
        "ray.shutdown(), no ray.init() to another cluster."
    ),
    why="""The replica's Ray connection belongs to Ray Serve: ray.shutdown() cuts the
    serving replica off the cluster and removes its job's placement groups and actors, and a
    new ray.init() starts another job (or another cluster) that the replica's objects do not
    belong to.""",
)
def ray_connection(ctx: CheckContext) -> str | None:
    _require_unchanged(
        ctx,
        RAY_CONNECTION,
        expected="the driver connected to the same cluster, as the same job, after every "
        "call as before it",
        fix="never call ray.shutdown() or ray.init() in a callback: the process is "
        "connected before the first phase; use that connection (ray.util.placement_group, "
        "ray.get, ...), and test ray.is_initialized() if you must know",
    )
    return None


@check(
    "process.environment",
    rule="No call changes os.environ; variables for the engine's workers go in runtime_env.",
    why="""os.environ belongs to this one process: the engine's workers are started by
    other raylets, on other nodes, and never see it, so a variable set there works on a
    one-node test and not in a deployment; runtime_env={"env_vars": {...}} reaches every
    worker.""",
)
def environment(ctx: CheckContext) -> str | None:
    _require_unchanged(
        ctx,
        ENVIRONMENT,
        expected="os.environ the same after every call as before it",
        fix=(
            "set the variables in the runtime env Ray gives the workers instead: "
            "self.ctx.runtime_env.setdefault('env_vars', {})['NAME'] = 'value' (in "
            "on_before_node_init); reading os.environ is fine"
            if ctx.subject.style == CALLBACKBASE
            else "return the variables in runtime_env env_vars instead: {'runtime_env': "
            "{**(data.get('runtime_env') or {}), 'env_vars': {**((data.get('runtime_env') or "
            "{}).get('env_vars') or {}), 'NAME': 'value'}}}; reading os.environ is fine"
        ),
    )
    return None


@check(
    "process.working-directory",
    rule="No call changes the working directory (os.chdir).",
    why="""The working directory is shared by everything in the replica process: after
    os.chdir every relative path of Ray Serve, the engine and the other callbacks points
    somewhere else, and the engine's workers on other nodes do not follow.""",
)
def working_directory(ctx: CheckContext) -> str | None:
    _require_unchanged(
        ctx,
        WORKING_DIRECTORY,
        expected="os.getcwd() the same after every call as before it",
        fix="use absolute paths (pathlib.Path(__file__).parent / 'file', or a path from "
        "the config) instead of os.chdir; to give the engine's workers files, ship them "
        "with runtime_env={'working_dir': ...}",
    )
    return None


@check(
    "process.import-path",
    rule="No call changes sys.path.",
    why="""The replica's sys.path does not reach the engine's workers, and an entry added on
    every initialization makes every later import in the process scan one more folder; code
    the workers need travels with runtime_env py_modules or working_dir.""",
)
def import_path(ctx: CheckContext) -> str | None:
    _require_unchanged(
        ctx,
        IMPORT_PATH,
        expected="sys.path the same after every call as before it",
        fix="install the package (or set PYTHONPATH in the deployment's image), and ship "
        "code the engine's workers need with runtime_env={'py_modules': [...]} or "
        "{'working_dir': ...}; never edit sys.path in a callback",
    )
    return None
