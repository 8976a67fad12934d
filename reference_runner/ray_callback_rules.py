"""The rules a Ray 2.60 ``CallbackBase`` subclass must follow, as plain functions.

Each function returns a list of problems: strings that say what was expected, what happened
and how to fix it. An empty list means the rule holds. The conformance catalogue wraps them
(one check per function, failing with the problems joined); :data:`RULES` lists them with
the rule and why it matters on a Ray cluster.

Static rules take the class (or spec): :func:`loading_problems`, :func:`constructor_problems`,
:func:`hook_problems`, :func:`shipping_problems` (on a constructed instance). Field rules take
values: :func:`ctx_field_problems`, :func:`placement_group_problems`,
:func:`runtime_env_problems`. Run rules read what a
:class:`~reference_runner.ray_callback_base.CallbackBaseAdapter` observed while it ran the
class through the phases: :func:`error_problems`, :func:`run_problems`.

Importing this module does not import Ray; the functions import it when they need it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .downloadable import NodeModelDownloadable
from .ray_callback_base import (
    AWAITED_HOOKS,
    CUSTOM_DATA_KEY,
    HOOK_PHASES,
    RAY_CALLBACK_BASE_MODULE,
    SYNC_HOOKS,
    CallbackBaseAdapter,
    HookCall,
    is_callback_base_class,
    is_download_choice,
    ray_callback_api,
    resolve_spec,
    to_ctx_download_choice,
)
from .reserved import is_placement_group, reserved_key_problem

#: Methods of Ray's ``CallbackBase`` that run the hooks; overriding them changes how Ray
#: dispatches hooks and handles their errors (``raise_error_on_callback``).
RAY_MACHINERY: Final = (
    "run_callback",
    "run_callback_sync",
    "_get_method",
    "_handle_callback_error",
)


# ---------------------------------------------------------------------- loading


def loading_problems(spec: str | type) -> list[str]:
    """The spec loads as Ray's ``LLMConfig.callback_config.callback_class`` loads it.

    Ray's ``load_class`` splits an import path once, at the last ``:`` or else the last
    ``.``, imports the module and takes one attribute: ``pkg.mod:Class`` and
    ``pkg.mod.Class`` load, ``pkg.mod:Outer.Inner`` does not. What it names must subclass
    Ray's ``CallbackBase``.
    """
    problems: list[str] = []
    try:
        target = resolve_spec(spec) if isinstance(spec, str) else spec
    except ImportError as exc:
        return [f"expected {spec!r} to import; it did not: {exc}"]
    if not is_callback_base_class(target):
        shown = target.__qualname__ if isinstance(target, type) else repr(target)
        return [
            f"expected {spec!r} to name a subclass of Ray's CallbackBase "
            f"({RAY_CALLBACK_BASE_MODULE}.CallbackBase); it names {shown}. Subclass "
            "CallbackBase, or certify it as a (phase, config, data) callback instead"
        ]
    if isinstance(spec, str):
        try:
            loaded = _ray_load_class(spec)
        except Exception as exc:
            problems.append(
                f"expected Ray's load_class({spec!r}) to load it, as Ray loads "
                f"callback_config.callback_class; it raised {type(exc).__name__}: {exc}. "
                "Name the class as 'package.module:Class' (one attribute after the module)"
            )
        else:
            if loaded is not target:
                problems.append(
                    f"expected Ray's load_class({spec!r}) to load {target!r}; it loaded "
                    f"{loaded!r}. Name the class as 'package.module:Class'"
                )
    return problems


def _ray_load_class(path: str) -> Any:
    try:
        from ray.llm._internal.common.utils.import_utils import load_class
    except ImportError:  # same logic as Ray 2.60's load_class
        import importlib

        module_path, class_name = path.rsplit(":" if ":" in path else ".", 1)
        return getattr(importlib.import_module(module_path), class_name)
    return load_class(path)


# ---------------------------------------------------------------------- construction


def ray_ctx_kwargs(*, placement_group: Any = None, runtime_env: Any = None) -> dict[str, Any]:
    """The ``ctx_kwargs`` Ray's ``get_or_create_callback`` passes: ``MODEL_AND_TOKENIZER``,
    the replica's placement group (default: :func:`unplaced_placement_group`) and its
    runtime env (default ``{}``)."""
    return {
        "worker_node_download_model": to_ctx_download_choice(
            NodeModelDownloadable.MODEL_AND_TOKENIZER
        ),
        "placement_group": unplaced_placement_group()
        if placement_group is None
        else placement_group,
        "runtime_env": {} if runtime_env is None else runtime_env,
    }


def unplaced_placement_group() -> Any:
    """A real Ray ``PlacementGroup`` handle with a fresh random id that was never created
    on any cluster: right for type checks and pickling, useless for scheduling."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    return PlacementGroup(PlacementGroupID.from_random())


def constructor_problems(
    callback_class: type,
    llm_config: Any,
    *,
    callback_kwargs: Mapping[str, Any] | None = None,
    raise_error_on_callback: bool = True,
    ctx_kwargs: Mapping[str, Any] | None = None,
) -> list[str]:
    """The class can be built the way Ray builds it, and keeps what Ray passes.

    Ray calls ``cls(raise_error_on_callback=..., llm_config=..., ctx_kwargs={...},
    **callback_kwargs)``, all by keyword, once per process, and then reads ``self.ctx``
    (a ``CallbackCtx`` built from ``ctx_kwargs``) and ``self.raise_error_on_callback``.
    """
    kwargs = dict(callback_kwargs or {})
    ctx_kwargs = dict(ctx_kwargs) if ctx_kwargs is not None else ray_ctx_kwargs()
    name = callback_class.__qualname__
    call = dict(
        raise_error_on_callback=raise_error_on_callback,
        llm_config=llm_config,
        ctx_kwargs=ctx_kwargs,
        **kwargs,
    )
    shown = "cls(raise_error_on_callback=..., llm_config=..., ctx_kwargs=..."
    shown += "".join(f", {k}=..." for k in kwargs) + ")"
    try:
        signature = inspect.signature(callback_class)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**call)
        except TypeError as exc:
            return [
                f"expected {name}{signature} to accept Ray's call {shown}; it does not: "
                f"{exc}. Write __init__(self, **kwargs) (or keep CallbackBase's parameters "
                "and take your own options by keyword) and call super().__init__(**kwargs)"
            ]
    try:
        instance = callback_class(**call)
    except Exception as exc:
        return [
            f"expected {shown} to build {name}; it raised {type(exc).__name__}: {exc}. "
            "Ray builds it on every replica with these arguments; validate your own "
            "callback_kwargs with a clear message, and let the rest through to "
            "super().__init__(**kwargs)"
        ]
    problems: list[str] = []
    ctx_class = ray_callback_api().CallbackCtx
    ctx = getattr(instance, "ctx", None)
    if not isinstance(ctx, ctx_class):
        problems.append(
            f"expected {name}(...).ctx to be a CallbackCtx built from ctx_kwargs; it is "
            f"{ctx!r}. Call super().__init__(**kwargs) in __init__ (Ray reads self.ctx "
            "right after building the instance)"
        )
    else:
        for key, value in ctx_kwargs.items():
            if getattr(ctx, key, None) is not value:
                problems.append(
                    f"expected ctx.{key} to be what Ray passed in ctx_kwargs ({value!r}); it "
                    f"is {getattr(ctx, key, None)!r}. Pass ctx_kwargs on to "
                    "super().__init__ unchanged and set fields in on_before_node_init"
                )
    if getattr(instance, "raise_error_on_callback", None) is not raise_error_on_callback:
        problems.append(
            f"expected {name}(...).raise_error_on_callback to be {raise_error_on_callback} "
            f"as Ray passed it; it is {getattr(instance, 'raise_error_on_callback', None)!r}. "
            "Pass raise_error_on_callback on to super().__init__"
        )
    return problems


# ---------------------------------------------------------------------- hooks


def hook_problems(callback_class: type) -> list[str]:
    """The hooks have the form Ray calls them in.

    * ``on_before_node_init`` and ``on_after_node_init`` are ``async def``: Ray awaits
      them with ``await run_callback(name)``. A plain ``def`` is called inline on the
      replica's event loop (blocking it), and if it returns a coroutine, that coroutine is
      dropped unawaited.
    * ``on_before_download_model_files_distributed`` is a plain ``def``: Ray calls it with
      ``run_callback_sync`` in a task on each worker node. An ``async def`` is run with
      ``asyncio.run`` there (a fresh loop per call) and fails inside a running loop.
    * every hook can be called with no arguments (Ray calls ``method()``);
    * no other ``on_*`` method (Ray 2.60 calls only these three; a typo is never called);
    * Ray's dispatch (``run_callback``, ``run_callback_sync``, ``_get_method``,
      ``_handle_callback_error``) is not overridden: it is what honours
      ``raise_error_on_callback`` and wraps hook errors.
    """
    problems: list[str] = []
    name = callback_class.__qualname__
    for hook in (*AWAITED_HOOKS, *SYNC_HOOKS):
        method = getattr(callback_class, hook, None)
        if not callable(method):
            problems.append(
                f"expected {name}.{hook} to be a method; it is {method!r}. Define it with "
                f"'{'async def' if hook in AWAITED_HOOKS else 'def'} {hook}(self)' or leave "
                "CallbackBase's"
            )
            continue
        is_async = inspect.iscoroutinefunction(method)
        if hook in AWAITED_HOOKS and not is_async:
            problems.append(
                f"expected {name}.{hook} to be 'async def': Ray awaits it with "
                f"'await callback.run_callback({hook!r})'; it is a plain def, which Ray "
                "calls inline on the replica's event loop (blocking every request it "
                "serves meanwhile) and whose returned coroutine, if any, is never awaited. "
                f"Declare it 'async def {hook}(self)' and await slow work"
            )
        if hook in SYNC_HOOKS and is_async:
            problems.append(
                f"expected {name}.{hook} to be a plain def: Ray calls it with "
                f"'callback.run_callback_sync({hook!r})' in a task on each worker node; it "
                "is 'async def', which Ray runs with asyncio.run (a new event loop per call) "
                "and which fails where a loop is already running. Declare it "
                f"'def {hook}(self)'"
            )
        arity = _no_arg_call_problem(callback_class, hook)
        if arity:
            problems.append(
                f"expected {name}.{hook} to take no arguments besides self (Ray calls "
                f"method()); {arity}. Read what you need from self.ctx, self.llm_config and "
                "self.kwargs"
            )
    known = set(HOOK_PHASES)
    for klass in callback_class.__mro__:
        if _is_ray_base(klass) or klass is object:
            break
        for attr, value in vars(klass).items():
            if attr.startswith("on_") and attr not in known and callable(value):
                close = difflib.get_close_matches(attr, sorted(known), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(
                    f"expected only Ray's hooks ({', '.join(HOOK_PHASES)}); "
                    f"{klass.__qualname__}.{attr} is never called by Ray 2.60. {hint}"
                    "Rename it, or make it a private helper (_name) called from a hook"
                )
            if attr in RAY_MACHINERY:
                problems.append(
                    f"expected {klass.__qualname__} to keep CallbackBase.{attr}; it overrides "
                    "it, so Ray's dispatch of sync/async hooks and its handling of "
                    "raise_error_on_callback no longer apply. Remove the override and put "
                    "the logic in the hooks"
                )
    return problems


def _is_ray_base(klass: type) -> bool:
    return klass.__module__ == RAY_CALLBACK_BASE_MODULE and klass.__name__ == "CallbackBase"


def _no_arg_call_problem(callback_class: type, hook: str) -> str | None:
    static = inspect.getattr_static(callback_class, hook, None)
    method = getattr(callback_class, hook)
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if inspect.isfunction(static) and params:
        params = params[1:]  # self
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return f"it requires {required}" if required else None


# ---------------------------------------------------------------------- ctx fields


def placement_group_problems(value: Any, *, required: bool = False) -> list[str]:
    """``ctx.placement_group`` is a Ray placement group (``None`` only while not
    ``required``: Ray reads it for the worker downloads and for the engine)."""
    if value is None:
        if not required:
            return []
        return [
            "ctx.placement_group = None, where a Ray placement group is expected: Ray reads "
            "it right after on_before_node_init (to find the nodes that download the model) "
            "and after on_after_node_init (to start the engine). Leave it, or replace it "
            "with ray.util.placement_group(...)"
        ]
    if is_placement_group(value):
        return []
    return [
        f"ctx.placement_group = {_short(value)}, where a Ray placement group is expected "
        "(what ray.util.placement_group(bundles, strategy=...) returns). Assign the "
        "PlacementGroup object itself, not its id, name or bundles"
    ]


def runtime_env_problems(value: Any) -> list[str]:
    """``ctx.runtime_env`` is ``None`` or a dict Ray accepts as a runtime env (Ray passes
    it to the download tasks and to the engine's workers)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            f"ctx.runtime_env = {_short(value)}, where a dict Ray accepts as a runtime env "
            "is expected (e.g. {'env_vars': {'HF_HOME': '/data'}})"
        ]
    problem = reserved_key_problem("runtime_env", value)
    if problem is None:
        return []
    return [
        f"ctx.runtime_env = {_short(value)}, where {problem} is expected. Fix the field Ray names"
    ]


def ctx_field_problems(value: Any, *, placement_group_required: bool = False) -> list[str]:
    """Every ``CallbackCtx`` field holds the type Ray relies on.

    ``worker_node_download_model``: a ``NodeModelDownloadable`` member (Ray compares it
    with its enum: a name string or ``None`` silently downloads the whole model);
    ``placement_group`` and ``runtime_env``: see :func:`placement_group_problems` and
    :func:`runtime_env_problems`; ``custom_data``: a dict with str keys; ``run_init_node``:
    a bool (Ray tests its truth; ``"false"`` is true).
    """
    ctx_class = ray_callback_api().CallbackCtx
    if not isinstance(value, ctx_class):
        return [
            f"self.ctx = {_short(value)}, where the CallbackCtx Ray built is expected. Change "
            "its fields (self.ctx.placement_group = ...) rather than replacing it"
        ]
    ctx: Any = value
    problems: list[str] = []
    choice = ctx.worker_node_download_model
    if not is_download_choice(choice):
        names = ", ".join(NodeModelDownloadable.__members__)
        problems.append(
            f"ctx.worker_node_download_model = {_short(choice)}, where a "
            f"NodeModelDownloadable member ({names}) is expected: Ray compares it with its "
            "enum, so anything else downloads the whole model. Assign "
            "NodeModelDownloadable.<NAME> from ray.llm._internal.common.utils.download_utils"
        )
    problems += placement_group_problems(ctx.placement_group, required=placement_group_required)
    problems += runtime_env_problems(ctx.runtime_env)
    custom = ctx.custom_data
    if not isinstance(custom, dict) or not all(isinstance(k, str) for k in custom):
        problems.append(
            f"ctx.custom_data = {_short(custom)}, where a dict with str keys is expected "
            f"(it maps to data[{CUSTOM_DATA_KEY!r}]). Store entries in it: "
            "self.ctx.custom_data['my_key'] = value"
        )
    if not isinstance(ctx.run_init_node, bool):
        problems.append(
            f"ctx.run_init_node = {_short(ctx.run_init_node)}, where a bool is expected "
            "(Ray tests its truth: 'false', 0.0 or [] do not mean what they say). Assign "
            "True or False"
        )
    return problems


# ---------------------------------------------------------------------- shipping


def shipping_problems(instance: Any) -> list[str]:
    """The instance survives Ray's serializer: Ray pickles the ``LLMConfig`` that holds
    it into each worker node's download task, where
    ``on_before_download_model_files_distributed`` runs on the copy."""
    from ray import cloudpickle as _cloudpickle

    cloudpickle: Any = _cloudpickle
    name = type(instance).__qualname__
    try:
        copy = cloudpickle.loads(cloudpickle.dumps(instance))
    except Exception as exc:
        return [
            f"expected a {name} instance to pickle with Ray's serializer, as Ray ships it to "
            f"every worker node; it failed: {type(exc).__name__}: {exc}. Create clients, "
            "locks and open files lazily inside the hooks, or define "
            "__getstate__/__setstate__"
        ]
    problems: list[str] = []
    ctx_class = ray_callback_api().CallbackCtx
    if not isinstance(getattr(copy, "ctx", None), ctx_class):
        problems.append(
            f"expected the copy of {name} that reaches a worker to have its CallbackCtx; it "
            f"has ctx = {getattr(copy, 'ctx', None)!r}. Keep ctx in __getstate__"
        )
    elif instance.ctx.worker_node_download_model != copy.ctx.worker_node_download_model:
        problems.append(
            f"expected ctx.worker_node_download_model to survive the trip to a worker; "
            f"{instance.ctx.worker_node_download_model!r} arrived as "
            f"{copy.ctx.worker_node_download_model!r}"
        )
    return problems


# ---------------------------------------------------------------------- run rules


def error_problems(calls: Iterable[HookCall]) -> list[str]:
    """No hook raises, and what would reach the caller is fit to.

    A hook's ``Exception`` is wrapped by Ray's ``run_callback``: with
    ``raise_error_on_callback=True`` as ``Exception("Error running callback method
    '<hook>' on <Class>: <message>")`` chained to it, failing the replica's start; with
    ``False`` it is logged and initialization goes on with ``ctx`` as the hook left it. A
    ``BaseException`` that is not an ``Exception`` escapes that handling. An error must
    pickle to cross from a worker node or a replica to the caller.
    """
    import pickle

    problems: list[str] = []
    for call in calls:
        exc = call.raised
        if exc is None:
            continue
        where = f"{call.callback}.{call.hook} (phase {call.phase!r})"
        if not isinstance(exc, Exception):
            problems.append(
                f"expected {where} to raise only Exceptions; it raised "
                f"{type(exc).__name__}, which Ray's run_callback does not catch: it stops "
                "the replica outright, whatever raise_error_on_callback says. Raise an "
                "Exception (e.g. RuntimeError) instead"
            )
            continue
        how = (
            "Ray wrapped it as Exception('Error running callback method ...') and the "
            "replica would fail to start"
            if call.surfaced is not None
            else "Ray logged it and went on (raise_error_on_callback=False), with ctx as "
            "the hook left it"
        )
        problems.append(
            f"expected {where} to complete; it raised {type(exc).__name__}: {exc}. {how}. "
            "Fix the cause, or catch what you can handle inside the hook"
        )
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception as pickling:
            problems.append(
                f"expected the {type(exc).__name__} raised by {where} to survive pickling, "
                "as errors from worker nodes and replicas reach the caller pickled; it "
                f"failed: {type(pickling).__name__}: {pickling}. Give the exception class "
                "an __init__ whose arguments are its args, or define __reduce__"
            )
    return problems


def run_problems(adapter: CallbackBaseAdapter) -> list[str]:
    """What the adapter saw while running the class: :func:`error_problems`, plus hooks
    whose return value Ray drops (a coroutine from a plain ``def`` is never awaited: its
    body never runs), ``ctx`` changes made on the copy shipped to a worker (lost, and the
    download choice was already read), and changes ``data`` cannot express."""
    problems = error_problems(adapter.calls)
    for call in adapter.calls:
        where = f"{call.callback}.{call.hook} (phase {call.phase!r})"
        if inspect.isawaitable(call.returned):
            problems.append(
                f"expected {where} to do its work when called; as a plain def it returned "
                f"{type(call.returned).__name__} {call.returned!r}, which Ray's run_callback "
                "drops without awaiting, so that work never runs. Declare the hook "
                f"'async def' (Ray then awaits it)"
            )
        elif call.returned is not None:
            problems.append(
                f"expected {where} to return None; it returned {_short(call.returned)}, which "
                "Ray discards. Set self.ctx fields (or self.ctx.custom_data) instead"
            )
        if call.lost:
            fields = ", ".join(f"ctx.{f}" for f in call.lost)
            problems.append(
                f"expected {where} to leave ctx alone; it changed {fields}. Ray runs this "
                "hook on the copy shipped to each worker node, after reading the download "
                "choice, so the change never reaches the replica. Make it in "
                "on_before_node_init"
            )
        problems.extend(f"{where}: {note}" for note in call.unmapped)
    return problems


# ---------------------------------------------------------------------- all static rules


def static_problems(
    spec: str | type,
    llm_config: Any,
    *,
    callback_kwargs: Mapping[str, Any] | None = None,
    raise_error_on_callback: bool = True,
) -> dict[str, list[str]]:
    """Every rule that needs no run, by rule id (see :data:`RULES`), in order.

    When the spec does not load, only ``callbackbase.loading`` is reported; when the class
    cannot be built, ``callbackbase.shippable`` is left out (there is no instance to ship).
    """
    out = {"callbackbase.loading": loading_problems(spec)}
    if out["callbackbase.loading"] and not is_callback_base_class(spec):
        return out
    cls = spec if isinstance(spec, type) else resolve_spec(spec)
    ctx_kwargs = ray_ctx_kwargs()
    out["callbackbase.constructor"] = constructor_problems(
        cls,
        llm_config,
        callback_kwargs=callback_kwargs,
        raise_error_on_callback=raise_error_on_callback,
        ctx_kwargs=ctx_kwargs,
    )
    out["callbackbase.hooks"] = hook_problems(cls)
    try:
        instance = cls(
            raise_error_on_callback=raise_error_on_callback,
            llm_config=llm_config,
            ctx_kwargs=ctx_kwargs,
            **dict(callback_kwargs or {}),
        )
    except Exception:
        return out
    out["callbackbase.shippable"] = shipping_problems(instance)
    return out


# ---------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Rule:
    """One rule for ``CallbackBase`` subclasses: ``id`` (stable), the rule, why it matters,
    and the function returning its problems."""

    id: str
    rule: str
    why: str
    function: Callable[..., list[str]]


#: Every rule, in the order the docs list them.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "callbackbase.loading",
        "The spec names a CallbackBase subclass that Ray's load_class can load.",
        "Ray loads callback_config.callback_class with a one-split loader on every replica.",
        loading_problems,
    ),
    Rule(
        "callbackbase.constructor",
        "cls(raise_error_on_callback=, llm_config=, ctx_kwargs=, **callback_kwargs) builds "
        "it and leaves a CallbackCtx from ctx_kwargs in self.ctx.",
        "Ray builds it with exactly this keyword call and reads self.ctx at once.",
        constructor_problems,
    ),
    Rule(
        "callbackbase.hooks",
        "Awaited hooks are async def, the download hook a plain def, all take no "
        "arguments, no misspelt on_* hooks, Ray's dispatch not overridden.",
        "Ray awaits two hooks on the replica's event loop and runs the third in worker tasks.",
        hook_problems,
    ),
    Rule(
        "callbackbase.ctx-types",
        "After every hook, each ctx field holds the type Ray relies on; placement group "
        "and runtime env are valid.",
        "Ray passes ctx straight to the download tasks and the engine: a wrong type fails "
        "there, far from the hook, or silently downloads the whole model.",
        ctx_field_problems,
    ),
    Rule(
        "callbackbase.shippable",
        "An instance survives Ray's serializer with its ctx.",
        "Ray pickles it (inside LLMConfig) into every worker node's download task.",
        shipping_problems,
    ),
    Rule(
        "callbackbase.errors",
        "No hook raises; nothing but Exceptions; errors survive pickling.",
        "Ray wraps or swallows hook errors per raise_error_on_callback; BaseExceptions "
        "escape it and errors cross process boundaries pickled.",
        error_problems,
    ),
    Rule(
        "callbackbase.run",
        "Hooks return None, do their work when called, and change ctx only where the "
        "change reaches the replica.",
        "Ray drops hook return values and the changes a download hook makes on a worker.",
        run_problems,
    ),
)


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) > 70:
        text = text[:67] + "..."
    return f"{type(value).__name__} {text}"


__all__ = [
    "RAY_MACHINERY",
    "RULES",
    "Rule",
    "constructor_problems",
    "ctx_field_problems",
    "error_problems",
    "hook_problems",
    "loading_problems",
    "placement_group_problems",
    "ray_ctx_kwargs",
    "run_problems",
    "runtime_env_problems",
    "shipping_problems",
    "static_problems",
    "unplaced_placement_group",
]
