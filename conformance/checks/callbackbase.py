"""Rules only for Ray 2.60's ``CallbackBase`` subclasses (style ``"callbackbase"``).

Each check wraps one rule of :data:`reference_runner.ray_callback_rules.RULES` (same id,
same reason): it calls the rule's function and fails with its problems, which already say
what was expected, what happened and how to fix it. The static rules (loading,
constructor, hooks, shippable) run in the test process; the run rules (ctx-types, errors,
run) read what the :class:`~reference_runner.ray_callback_base.CallbackBaseAdapter` saw
while the lifecycles of :class:`~conformance.context.Bench` drove the class through
``initialize_node`` on the fake cluster.

The checks of the other categories that apply to this style run through the same adapter
(see ``styles`` in :mod:`conformance.registry`).
"""

from __future__ import annotations

from typing import Final

from reference_runner import CallbackReturnError
from reference_runner.ray_callback_base import CallbackBaseAdapter, RayCallbackContractError
from reference_runner.ray_callback_rules import (
    RULES,
    constructor_problems,
    ctx_field_problems,
    error_problems,
    hook_problems,
    loading_problems,
    run_problems,
    shipping_problems,
)

from .context import CheckContext
from .failure import CheckFailed, CheckSkipped, describe_error
from .harness import Run
from .registry import CALLBACKBASE, check
from .runs import failing_call

_RULES: Final = {rule.id: rule for rule in RULES}
_NOT_BUILT: Final = "the class cannot be built the way Ray builds it (see callbackbase.constructor)"


def _rule(rule_id: str) -> str:
    return _RULES[rule_id].rule


def _why(rule_id: str) -> str:
    return _RULES[rule_id].why


def _fail(rule_id: str, problems: list[str], fix: str) -> None:
    """Raise :class:`CheckFailed` with ``problems`` when there are any."""
    if problems:
        raise CheckFailed(expected=_rule(rule_id), happened="\n".join(problems), fix=fix)


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


@check(
    "callbackbase.loading",
    rule="The spec names a CallbackBase subclass that Ray's load_class can load.",
    why=_why("callbackbase.loading"),
    where="local",
    needs_callback=False,
    styles=(CALLBACKBASE,),
)
def ray_loading(ctx: CheckContext) -> str | None:
    _fail(
        "callbackbase.loading",
        loading_problems(ctx.subject.spec),
        "name the class as 'package.module:Class' or 'package.module.Class' (one attribute "
        "after the module), defined at module level",
    )
    return None


@check(
    "callbackbase.constructor",
    rule="Ray's keyword call builds it, keeping ctx_kwargs in a CallbackCtx (self.ctx).",
    why=_why("callbackbase.constructor"),
    where="local",
    styles=(CALLBACKBASE,),
)
def constructor(ctx: CheckContext) -> str | None:
    _fail(
        "callbackbase.constructor",
        constructor_problems(_class(ctx), ctx.settings.base_config()),
        "write __init__(self, **kwargs), take your own options from callback_kwargs by "
        "keyword, and call super().__init__(**kwargs)",
    )
    return None


@check(
    "callbackbase.hooks",
    rule="Hooks are sync or async as Ray calls them, take no arguments, and are spelt right.",
    why=_why("callbackbase.hooks"),
    where="local",
    styles=(CALLBACKBASE,),
)
def hooks(ctx: CheckContext) -> str | None:
    _fail(
        "callbackbase.hooks",
        hook_problems(_class(ctx)),
        "declare on_before_node_init and on_after_node_init 'async def name(self)', "
        "on_before_download_model_files_distributed 'def name(self)', and keep "
        "CallbackBase's run_callback machinery",
    )
    return None


@check(
    "callbackbase.shippable",
    rule="An instance built as Ray builds it survives Ray's serializer with its ctx.",
    why=_why("callbackbase.shippable"),
    where="local",
    styles=(CALLBACKBASE,),
)
def ray_shippable(ctx: CheckContext) -> str | None:
    try:
        instance = ctx.subject.ray_instance(ctx.settings.base_config())
    except Exception:
        raise CheckSkipped(_NOT_BUILT) from None
    _fail(
        "callbackbase.shippable",
        shipping_problems(instance),
        "keep only picklable state on the instance (create clients, locks and files lazily "
        "in the hooks) and keep self.ctx",
    )
    return "pickled and rebuilt with ray.cloudpickle, ctx included"


@check(
    "callbackbase.ctx-types",
    rule="After every hook each ctx field holds the type Ray relies on (group, env valid).",
    why=_why("callbackbase.ctx-types"),
    styles=(CALLBACKBASE,),
)
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
    _fail(
        "callbackbase.ctx-types",
        problems,
        "assign NodeModelDownloadable members, real placement groups (ray.util."
        "placement_group) and runtime env dicts Ray accepts; change ctx's fields, never "
        "replace self.ctx",
    )
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


@check(
    "callbackbase.errors",
    rule="No hook raises; only Exceptions are raised, and they survive pickling.",
    why=_why("callbackbase.errors"),
    styles=(CALLBACKBASE,),
)
def hook_errors(ctx: CheckContext) -> str | None:
    adapter = _adapter(ctx)
    _fail(
        "callbackbase.errors",
        error_problems(adapter.calls),
        "fix the cause, or catch inside the hook what it can handle; raise Exception "
        "subclasses whose __init__ takes their args",
    )
    return None


@check(
    "callbackbase.run",
    rule="Hooks return None, do their work when called, and change ctx where it counts.",
    why=_why("callbackbase.run"),
    styles=(CALLBACKBASE,),
)
def hook_run(ctx: CheckContext) -> str | None:
    adapter = _adapter(ctx)
    raised = set(error_problems(adapter.calls))  # callbackbase.errors judges those
    problems = [p for p in run_problems(adapter) if p not in raised]
    _fail(
        "callbackbase.run",
        problems,
        "set self.ctx fields in on_before_node_init / on_after_node_init instead of "
        "returning values, and leave ctx alone in the download hook",
    )
    return f"{len(adapter.calls)} hook call(s) observed"
