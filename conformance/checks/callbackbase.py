"""The ``callbackbase.*`` checks: rules only for Ray 2.60's ``CallbackBase`` subclasses.

This module is the one owner of those rules: each has its id, its one-line rule (the
catalogue's text, and what a failure says was expected), why it matters on a Ray cluster
and the fix, in :data:`RULES`. The evaluation is in :mod:`conformance.callbackbase_rules`:
each check calls its function and fails with the problems it returns, which already say
what was expected, what happened and how to fix it.

The static rules (loading, constructor, hooks, shippable) run in the test process; the run
rules (ctx-types, errors, run) read what the
:class:`~reference_runner.ray_callback_base.CallbackBaseAdapter` saw while the lifecycles of
:class:`~conformance.context.Bench` drove the class through ``initialize_node`` on the fake
cluster. The checks of the other categories that apply to this style run through the same
adapter (see ``styles`` in :mod:`conformance.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from conformance.callbackbase_rules import (
    constructor_problems,
    error_problems,
    hook_problems,
    loading_problems,
    run_problems,
    shipping_problems,
)
from conformance.context import CheckContext
from conformance.failure import CheckFailed, CheckSkipped, describe_error
from conformance.harness import Run
from conformance.registry import CALLBACKBASE, CheckFunction, check
from conformance.runs import failing_call
from reference_runner import CallbackReturnError
from reference_runner.ray_callback_base import CallbackBaseAdapter, RayCallbackContractError
from reference_runner.ray_callback_ctx import ctx_field_problems


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
    "After every hook each ctx field holds the type Ray relies on (group, env valid).",
    "Ray passes ctx straight to the download tasks and the engine: a wrong type fails there, "
    "far from the hook, or silently downloads the whole model.",
    "assign NodeModelDownloadable members, real placement groups (ray.util.placement_group) "
    "and runtime env dicts Ray accepts; change ctx's fields, never replace self.ctx",
)
ERRORS: Final = Rule(
    "callbackbase.errors",
    "No hook raises; only Exceptions are raised, and they survive pickling.",
    "Ray wraps or swallows hook errors per raise_error_on_callback; BaseExceptions escape it "
    "and errors cross process boundaries pickled.",
    "fix the cause, or catch inside the hook what it can handle; raise Exception subclasses "
    "whose __init__ takes their args",
)
RUN: Final = Rule(
    "callbackbase.run",
    "Hooks return None, do their work when called, and change ctx where it counts.",
    "Ray drops hook return values and the changes a download hook makes on a worker.",
    "set self.ctx fields in on_before_node_init / on_after_node_init instead of returning "
    "values, and leave ctx alone in the download hook",
)

#: Every ``callbackbase.*`` rule, in catalogue order.
RULES: Final = (LOADING, CONSTRUCTOR, HOOKS, SHIPPABLE, CTX_TYPES, ERRORS, RUN)

_NOT_BUILT: Final = f"the class cannot be built the way Ray builds it (see {CONSTRUCTOR.id})"


def _register(
    rule: Rule, *, on_driver: bool, needs_callback: bool = True
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check for ``rule``, for ``CallbackBase`` subclasses only: in the test
    process (``on_driver``) or on the fake cluster."""
    return check(
        rule.id,
        rule=rule.rule,
        why=rule.why,
        runs_on="driver" if on_driver else "fake",
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


def _adapter(ctx: CheckContext) -> CallbackBaseAdapter:
    """The adapter that ran both lifecycles on the fake cluster; skip when the class was
    never built (the constructor failed)."""
    bench = ctx.require_bench()
    bench.lifecycles()
    adapter = bench.lifecycle_callback()
    if not isinstance(adapter, CallbackBaseAdapter) or adapter.instance is None:
        raise CheckSkipped(_NOT_BUILT)
    return adapter


@_register(LOADING, on_driver=True, needs_callback=False)
def ray_loading(ctx: CheckContext) -> str | None:
    _fail(LOADING, loading_problems(ctx.subject.spec))
    return None


#: The kit's option that gives a class its ``callback_kwargs`` (named in the fix).
CALLBACK_KWARGS_OPTION: Final = "--raycallbacks-callback-kwargs"


@_register(CONSTRUCTOR, on_driver=True)
def constructor(ctx: CheckContext) -> str | None:
    kwargs = ctx.subject.callback_kwargs
    problems = constructor_problems(_class(ctx), ctx.settings.base_config(), callback_kwargs=kwargs)
    if problems and not kwargs:
        spec = ctx.subject.spec
        raise CheckFailed(
            expected=CONSTRUCTOR.rule,
            happened="\n".join(problems) + "\n(built with no callback_kwargs)",
            fix=f"if {spec} needs callback_kwargs (Ray's callback_config.callback_kwargs), "
            f'give them to the kit: {CALLBACK_KWARGS_OPTION} \'{spec}={{"key": "value"}}\' '
            f"(or {spec}=@kwargs.yaml); otherwise {CONSTRUCTOR.fix}",
        )
    _fail(CONSTRUCTOR, problems)
    if kwargs:
        return f"built with callback_kwargs {sorted(kwargs)}"
    return None


@_register(HOOKS, on_driver=True)
def hooks(ctx: CheckContext) -> str | None:
    _fail(HOOKS, hook_problems(_class(ctx)))
    return None


@_register(SHIPPABLE, on_driver=True)
def ray_shippable(ctx: CheckContext) -> str | None:
    try:
        instance = ctx.subject.ray_instance(ctx.settings.base_config())
    except Exception:
        raise CheckSkipped(_NOT_BUILT) from None
    _fail(SHIPPABLE, shipping_problems(instance))
    return "pickled and rebuilt with ray.cloudpickle, ctx included"


@_register(CTX_TYPES, on_driver=False)
def ctx_types(ctx: CheckContext) -> str | None:
    bench = ctx.require_bench()
    scenarios: dict[str, list[str]] = {}  # the same problem in both lifecycles: said once
    for run in bench.lifecycles():
        for problem in _ctx_problems(run):
            scenarios.setdefault(problem, []).append(run.scenario)
    problems = [f"in the {' and the '.join(s)}: {p}" for p, s in scenarios.items()]
    adapter = _adapter(ctx)
    if not problems:
        problems = ctx_field_problems(adapter.instance.ctx)
    _fail(CTX_TYPES, problems)
    return None


def _ctx_problems(run: Run) -> list[str]:
    """The adapter's verdict on ``ctx`` after a hook, if it ended ``run``."""
    call = failing_call(run)
    error = run.error
    if call is None or error is None:
        return []
    if isinstance(error, CallbackReturnError) or (
        isinstance(error, RayCallbackContractError) and "cannot be sent" not in str(error)
    ):
        return [describe_error(error)]
    return []


@_register(ERRORS, on_driver=False)
def hook_errors(ctx: CheckContext) -> str | None:
    adapter = _adapter(ctx)
    _fail(ERRORS, error_problems(adapter.calls))
    return None


@_register(RUN, on_driver=False)
def hook_run(ctx: CheckContext) -> str | None:
    adapter = _adapter(ctx)
    raised = set(error_problems(adapter.calls))  # callbackbase.errors judges those
    _fail(RUN, [p for p in run_problems(adapter) if p not in raised])
    return f"{len(adapter.calls)} hook call(s) observed"
