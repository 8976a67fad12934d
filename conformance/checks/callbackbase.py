"""The ``callbackbase.*`` checks: rules only for Ray's ``CallbackBase`` subclasses.

This module is the one owner of those rules: each has its id, its one-line rule (the
catalogue's text, and what a failure says was expected), why it matters on a Ray cluster
and the fix, in :data:`RULES`.

Ray is the judge (docs/design.md §Ray is the judge). The static rules (loading,
constructor, hooks, shippable; :mod:`conformance.callbackbase_rules`) run in the test
process on Ray's own ``LLMConfig`` of the deployment, and fail only for what Ray cannot
call or load; forms Ray runs fine are advice. The run rules (ctx-types, errors, run;
:mod:`conformance.ray_start_rules`) read the two replica starts that Ray's own code ran
(:mod:`conformance.ray_harness`: Serve's placement group, Ray's
``get_or_create_callback``, ``run_callback``, ``initialize_node`` and its download tasks).
``callbackbase.run`` runs on every requested cluster (fake and live); a failure whose cause
is missing here (a package, the network) is ``inconclusive``, not a defect
(:mod:`conformance.environment_gaps`). The ``process.*`` and ``errors.*`` checks that apply
to this style read the same starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from conformance.callbackbase_rules import (
    constructor_problems,
    hook_advice,
    hook_problems,
    loading_problems,
    shipping_problems,
)
from conformance.context import CheckContext
from conformance.failure import Advice, CheckFailed, CheckSkipped
from conformance.harness import Run
from conformance.ray_harness import scenario_steps
from conformance.ray_observer import StepRecorder
from conformance.ray_start_rules import raised_problems, start_failure
from conformance.ray_steps import step_name
from conformance.registry import CALLBACKBASE, CheckFunction, check


@dataclass(frozen=True)
class Rule:
    """One ``callbackbase.*`` rule: its stable ``id``, the one-line ``rule``, ``why`` it
    matters on a Ray cluster, and the ``fix`` a failure suggests."""

    id: str
    rule: str
    why: str
    fix: str


LOADING: Final = Rule(
    "callbackbase.loading",
    "The spec names a CallbackBase subclass that Ray's load_class can load.",
    "Ray loads callback_config.callback_class with a one-split loader on every replica.",
    "name the class as 'package.module:Class' or 'package.module.Class' (one attribute "
    "after the module), defined at module level",
)
CONSTRUCTOR: Final = Rule(
    "callbackbase.constructor",
    "Ray's keyword call builds it, keeping ctx_kwargs in a CallbackCtx (self.ctx).",
    "Ray builds it with exactly this keyword call and reads self.ctx at once.",
    "write __init__(self, **kwargs), take your own options from callback_kwargs by keyword, "
    "and call super().__init__(**kwargs)",
)
HOOKS: Final = Rule(
    "callbackbase.hooks",
    "Hooks are sync or async as Ray calls them, take no arguments, and are spelt right.",
    "Ray awaits two hooks on the replica's event loop and runs the third in worker tasks.",
    "declare on_before_node_init and on_after_node_init 'async def name(self)', "
    "on_before_download_model_files_distributed 'def name(self)', and keep CallbackBase's "
    "run_callback machinery",
)
SHIPPABLE: Final = Rule(
    "callbackbase.shippable",
    "An instance built as Ray builds it survives Ray's serializer with its ctx.",
    "Ray pickles it (inside LLMConfig) into every worker node's download task.",
    "keep only picklable state on the instance (create clients, locks and files lazily in "
    "the hooks) and keep self.ctx",
)
CTX_TYPES: Final = Rule(
    "callbackbase.ctx-types",
    "After every step of Ray's engine start, the ctx fields Ray reads hold what Ray can use.",
    "Ray passes ctx straight to the download tasks and the engine: a wrong type fails there, "
    "far from the hook, or silently downloads the whole model.",
    "assign NodeModelDownloadable members, real placement groups (ray.util.placement_group) "
    "and runtime env dicts Ray accepts; change ctx's fields, never replace self.ctx",
)
ERRORS: Final = Rule(
    "callbackbase.errors",
    "What a hook raises is an Exception that survives pickling; swallowed errors are shown.",
    "Ray's run_callback catches only Exceptions (a BaseException ends the replica whatever "
    "raise_error_on_callback says), and errors of the download tasks reach the replica "
    "pickled.",
    "raise Exception subclasses whose __init__ takes their args; never sys.exit() or "
    "raise SystemExit/KeyboardInterrupt in a hook",
)
RUN: Final = Rule(
    "callbackbase.run",
    "Ray's engine start with the callback completes: Ray builds it, runs its hooks and "
    "initialize_node, for a first and a restarted replica.",
    "This is what every replica of the deployment does before its engine starts; an error "
    "here is a replica that never serves.",
    "fix the step Ray names: the constructor (Ray's get_or_create_callback), the hook (its "
    "error is the cause of Ray's 'Error running callback method'), or what the hook left in "
    "self.ctx for Ray's initialize_node",
)

#: Every ``callbackbase.*`` rule, in catalogue order.
RULES: Final = (LOADING, CONSTRUCTOR, HOOKS, SHIPPABLE, CTX_TYPES, ERRORS, RUN)

_NOT_BUILT: Final = f"the class cannot be built the way Ray builds it (see {CONSTRUCTOR.id})"


def _register(
    rule: Rule, *, on_driver: bool, needs_callback: bool = True, each_cluster: bool = False
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check for ``rule``, for ``CallbackBase`` subclasses only: in the test
    process (``on_driver``), on the fake cluster, or on each requested cluster."""
    return check(
        rule.id,
        rule=rule.rule,
        why=rule.why,
        runs_on="driver" if on_driver else ("each-cluster" if each_cluster else "fake"),
        needs_callback=needs_callback,
        styles=(CALLBACKBASE,),
    )


def _fail(rule: Rule, problems: list[str]) -> None:
    """Raise :class:`CheckFailed` for ``rule`` with ``problems`` when there are any."""
    if problems:
        raise CheckFailed(expected=rule.rule, happened="\n".join(problems), fix=rule.fix)


def _class(ctx: CheckContext) -> type:
    target = ctx.subject.resolve().target
    assert isinstance(target, type)
    return target


@_register(LOADING, on_driver=True, needs_callback=False)
def ray_loading(ctx: CheckContext) -> str | None:
    _fail(LOADING, loading_problems(ctx.subject.spec))
    return None


#: The kit's option that gives a class its ``callback_kwargs`` (named in the fix).
CALLBACK_KWARGS_OPTION: Final = "--raycallbacks-callback-kwargs"


@_register(CONSTRUCTOR, on_driver=True)
def constructor(ctx: CheckContext) -> str | None:
    kwargs = ctx.subject.callback_kwargs
    problems = constructor_problems(
        _class(ctx),
        _ray_llm_config(ctx),
        callback_kwargs=kwargs,
        raise_error_on_callback=ctx.subject.raise_error_on_callback,
    )
    if problems and not kwargs:
        spec = ctx.subject.spec
        raise CheckFailed(
            expected=CONSTRUCTOR.rule,
            happened="\n".join(problems) + "\n(built with no callback_kwargs)",
            fix=f"if {spec} needs callback_kwargs (Ray's callback_config.callback_kwargs), "
            "give them to the kit in the deployment's Serve config "
            f"(--raycallbacks-serve-config) or with {CALLBACK_KWARGS_OPTION} "
            f'\'{spec}={{"key": "value"}}\' (or {spec}=@kwargs.yaml); otherwise {CONSTRUCTOR.fix}',
        )
    _fail(CONSTRUCTOR, problems)
    if kwargs:
        return f"built with callback_kwargs {sorted(kwargs)}"
    return None


def _ray_llm_config(ctx: CheckContext) -> Any:
    """Ray's own LLMConfig of the subject's deployment (the one the hooks get)."""
    return ctx.subject.ray_llm_config()


@_register(HOOKS, on_driver=True)
def hooks(ctx: CheckContext) -> str | None:
    cls = _class(ctx)
    _fail(HOOKS, hook_problems(cls))
    advice = hook_advice(cls)
    return Advice("advice: " + "; ".join(advice)) if advice else None


@_register(SHIPPABLE, on_driver=True)
def ray_shippable(ctx: CheckContext) -> str | None:
    try:
        instance = ctx.subject.ray_instance(_ray_llm_config(ctx))
    except Exception:
        raise CheckSkipped(_NOT_BUILT) from None
    _fail(SHIPPABLE, shipping_problems(instance))
    return "pickled and rebuilt with ray.cloudpickle, ctx included"


def _starts(ctx: CheckContext) -> list[Run]:
    """Both replica starts by Ray's code on this check's cluster (only the first when it
    hung)."""
    return ctx.require_bench().lifecycles()


def _recorder(run: Run) -> StepRecorder | None:
    ray = run.ray
    observer = getattr(ray, "observer", None)
    return observer if isinstance(observer, StepRecorder) else None


@_register(CTX_TYPES, on_driver=False)
def ctx_types(ctx: CheckContext) -> str | None:
    found: dict[str, tuple[str, list[str]]] = {}  # problem -> (first step, scenarios)
    for run in _starts(ctx):
        recorder = _recorder(run)
        for step, problem in recorder.ctx_problems if recorder is not None else ():
            _, scenarios = found.setdefault(problem, (step, []))
            if run.scenario not in scenarios:
                scenarios.append(run.scenario)
    problems = [
        f"in the {' and the '.join(scenarios)}, after {step_name(step)}: {problem}"
        for problem, (step, scenarios) in found.items()
    ]
    _fail(CTX_TYPES, problems)
    return None


@_register(ERRORS, on_driver=False)
def hook_errors(ctx: CheckContext) -> str | None:
    problems: list[str] = []
    swallowed: list[str] = []
    for run in _starts(ctx):
        problems += [f"in the {run.scenario}: {p}" for p in raised_problems(run)]
        recorder = _recorder(run)
        for _step, message in recorder.logged if recorder is not None else ():
            line = f"in the {run.scenario}, Ray logged and went on: {message}"
            if line not in swallowed:
                swallowed.append(line)
    _fail(ERRORS, problems)
    if swallowed:
        return Advice(
            "advice: raise_error_on_callback is false, so Ray logged these hook errors and "
            "started the replica without the hook's work: " + "; ".join(swallowed)
        )
    return None


@_register(RUN, on_driver=False, each_cluster=True)
def hook_run(ctx: CheckContext) -> str | None:
    for run in _starts(ctx):
        judgement = start_failure(run, ctx.subject.spec, ctx.subject.callback_kwargs)
        if judgement is not None:
            raise judgement
    runs = _starts(ctx)
    first = _recorder(runs[0])
    dropped_work = [
        f"in the {runs[0].scenario}, {step_name(step)}: {warning}"
        for step, warning in (first.unawaited if first is not None else ())
    ]
    if dropped_work:
        raise CheckFailed(
            expected="every hook to do its work when Ray calls it",
            happened="\n".join(dropped_work)
            + "\n(a plain def hook returned a coroutine; Ray's run_callback calls the hook and "
            "drops what it returns, so the coroutine's body never ran)",
            fix="declare the hook 'async def' (Ray then awaits it), or do the work in the "
            "plain def itself",
        )
    steps = scenario_steps(runs[0])
    where = ctx.require_cluster().name
    note = f"Ray ran {', '.join(steps)} on the {where} cluster ({len(runs)} replica start(s))"
    dropped = getattr(runs[0].ray, "dropped_hints", ())
    if dropped:
        note += (
            f"; the group's {', '.join(dropped)} hint was left out (the cluster has no such "
            "node), llm_config.accelerator_type kept"
        )
    return note
