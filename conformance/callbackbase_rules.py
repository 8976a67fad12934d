"""How the ``callbackbase.*`` checks judge a Ray 2.60 ``CallbackBase`` subclass.

Each function returns a list of problems: strings that say what was expected, what happened
and how to fix it; ``[]`` means the rule holds. The rules themselves (ids, one-line texts,
why, fixes) are the checks of :mod:`conformance.checks.callbackbase`, which call these
functions and fail with the problems joined; :func:`static_problems` runs the static ones
by check id, for use outside the kit.

Static functions take the class (or spec): :func:`loading_problems`,
:func:`constructor_problems`, :func:`hook_problems`, :func:`shipping_problems` (on a
constructed instance). Run functions read what a
:class:`~reference_runner.ray_callback_base.CallbackBaseAdapter` observed while it ran the
class through the phases: :func:`error_problems`, :func:`run_problems`. The ``ctx`` field
validity rule (``callbackbase.ctx-types``) is enforced by the adapter itself at run time
(:func:`reference_runner.ray_callback_ctx.ctx_field_problems`).

Importing this module does not import Ray; the functions import it when they need it.
"""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Final

from reference_runner.cloud_errors import cloud_error_note
from reference_runner.loading import describe_value, resolve_spec, split_label
from reference_runner.ray_callback_base import (
    AWAITED_HOOKS,
    HOOK_PHASES,
    RAY_CONSTRUCTOR_KEYWORDS,
    SYNC_HOOKS,
    CallbackBaseAdapter,
    HookCall,
    construct_as_ray,
    is_callback_base_class,
    ray_constructor_kwargs,
)
from reference_runner.ray_callback_ctx import (
    RAY_CALLBACK_BASE_MODULE,
    ray_callback_api,
    ray_ctx_kwargs,
)

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
    if isinstance(spec, str):
        spec, _ = split_label(spec)  # the import path Ray's callback_config holds
    try:
        target = resolve_spec(spec).target if isinstance(spec, str) else spec
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
    name = callback_class.__qualname__
    ctx_kwargs = dict(ctx_kwargs) if ctx_kwargs is not None else ray_ctx_kwargs()
    try:
        call = ray_constructor_kwargs(
            llm_config,
            ctx_kwargs=ctx_kwargs,
            callback_kwargs=callback_kwargs,
            raise_error_on_callback=raise_error_on_callback,
        )
    except TypeError as exc:
        return [f"expected callback_kwargs that Ray can pass to {name}; {exc}"]
    own = [k for k in call if k not in RAY_CONSTRUCTOR_KEYWORDS]
    shown = "cls(raise_error_on_callback=..., llm_config=..., ctx_kwargs=..."
    shown += "".join(f", {k}=..." for k in own) + ")"
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
        instance = construct_as_ray(
            callback_class,
            llm_config,
            ctx_kwargs=ctx_kwargs,
            callback_kwargs=callback_kwargs,
            raise_error_on_callback=raise_error_on_callback,
        )
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
    """What Ray cannot call, or never calls, among the class's hooks (each breaks or
    misconfigures a deployment; the forms Ray runs fine are :func:`hook_advice`'s):

    * every hook is callable with no arguments (Ray's ``_get_method`` hands it to
      ``run_callback``/``run_callback_sync``, which call ``method()``);
    * no ``on_*`` method that is a near miss of one of Ray's hook names (a misspelt hook
      is never called, so its work never happens).
    """
    problems: list[str] = []
    name = callback_class.__qualname__
    for hook in (*AWAITED_HOOKS, *SYNC_HOOKS):
        method = getattr(callback_class, hook, None)
        if not callable(method):
            problems.append(
                f"expected {name}.{hook} to be a method; it is {method!r}, which Ray's "
                f"run_callback({hook!r}) cannot call. Define it with "
                f"'async def {hook}(self)' or leave CallbackBase's"
            )
            continue
        arity = _no_arg_call_problem(callback_class, hook)
        if arity:
            problems.append(
                f"expected {name}.{hook} to take no arguments besides self (Ray calls "
                f"method()); {arity}. Read what you need from self.ctx, self.llm_config and "
                "self.kwargs"
            )
    changed = _download_hook_ctx_writes(callback_class)
    if changed:
        problems.append(
            f"expected {name}.{SYNC_HOOKS[0]} to leave self.ctx alone; it writes "
            f"{', '.join(changed)}. Ray runs this hook on the copy of the callback shipped to "
            "each download task, after reading the download choice, so the change never "
            "reaches the replica. Make it in on_before_node_init"
        )
    for klass, attr in _own_on_methods(callback_class):
        close = _near_miss(attr)
        if close is not None:
            problems.append(
                f"expected only Ray's hooks ({', '.join(HOOK_PHASES)}); "
                f"{klass.__qualname__}.{attr} is never called by Ray: did you mean "
                f"{close!r}? Rename it (or, if it is a helper the hooks call, make it "
                "private: _name)"
            )
    return problems


def hook_advice(callback_class: type) -> list[str]:
    """Forms Ray runs, but that a reviewer should know about (advice, never a failure):

    * a plain ``def on_before_node_init``/``on_after_node_init``: Ray's ``run_callback``
      calls it inline, so it blocks the replica's event loop while it runs;
    * an ``async def on_before_download_model_files_distributed``: Ray's
      ``run_callback_sync`` runs it with ``asyncio.run`` in each download task (a new event
      loop per call);
    * other ``on_*`` methods (helpers, or hooks of another Ray version): Ray calls only
      its three hooks;
    * an override of Ray's dispatch (``run_callback``, ``run_callback_sync``,
      ``_get_method``, ``_handle_callback_error``): Ray calls the override, which now
      decides how hooks run and what ``raise_error_on_callback`` does.
    """
    advice: list[str] = []
    name = callback_class.__qualname__
    for hook in AWAITED_HOOKS:
        method = getattr(callback_class, hook, None)
        if callable(method) and not inspect.iscoroutinefunction(method):
            advice.append(
                f"{name}.{hook} is a plain def: Ray's run_callback calls it inline on the "
                "replica's event loop, which waits while it runs; 'async def' lets slow work "
                "be awaited"
            )
    for hook in SYNC_HOOKS:
        method = getattr(callback_class, hook, None)
        if callable(method) and inspect.iscoroutinefunction(method):
            advice.append(
                f"{name}.{hook} is 'async def': Ray's run_callback_sync runs it with "
                "asyncio.run in each download task, a new event loop per call"
            )
    for klass, attr in _own_on_methods(callback_class):
        if _near_miss(attr) is None:
            advice.append(
                f"{klass.__qualname__}.{attr} is not one of Ray's hooks "
                f"({', '.join(HOOK_PHASES)}): Ray never calls it"
            )
    for klass in _own_classes(callback_class):
        for attr in vars(klass):
            if attr in RAY_MACHINERY:
                advice.append(
                    f"{klass.__qualname__} overrides CallbackBase.{attr}: Ray calls the "
                    "override, so it decides how hooks are dispatched and what "
                    "raise_error_on_callback does"
                )
    return advice


def _download_hook_ctx_writes(callback_class: type) -> list[str]:
    """``self.ctx.<field>`` targets the class's own download hook assigns (plain, augmented
    or item assignment, ``setattr(self.ctx, ...)``), read from its source; ``[]`` when the
    source cannot be read."""
    import ast
    import textwrap

    hook = SYNC_HOOKS[0]
    for klass in _own_classes(callback_class):
        function = vars(klass).get(hook)
        if function is None:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError):
            return []
        found: list[str] = []
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                while isinstance(target, ast.Subscript):
                    target = target.value
                field = _ctx_field(target)
                if field is not None and field not in found:
                    found.append(field)
        return [f"self.ctx.{f}" for f in found]
    return []


def _ctx_field(node: ast.expr) -> str | None:
    """``field`` of an ``self.ctx.field`` expression."""
    import ast

    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "ctx"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    ):
        return node.attr
    return None


def _own_classes(callback_class: type) -> list[type]:
    """The classes of ``callback_class``'s MRO below Ray's ``CallbackBase``."""
    own = []
    for klass in callback_class.__mro__:
        if _is_ray_base(klass) or klass is object:
            break
        own.append(klass)
    return own


def _own_on_methods(callback_class: type) -> list[tuple[type, str]]:
    known = set(HOOK_PHASES)
    return [
        (klass, attr)
        for klass in _own_classes(callback_class)
        for attr, value in vars(klass).items()
        if attr.startswith("on_") and attr not in known and callable(value)
    ]


def _near_miss(attr: str) -> str | None:
    """The hook name ``attr`` is likely a typo of, if any."""
    close = difflib.get_close_matches(attr, sorted(HOOK_PHASES), n=1, cutoff=0.75)
    return close[0] if close else None


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
        cloud = cloud_error_note(exc)  # names the bucket, which the message may not
        problems.append(
            f"expected {where} to complete; it raised {type(exc).__name__}: {exc}"
            f"{f' ({cloud})' if cloud else ''}. {how}. "
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
                f"expected {where} to return None; it returned "
                f"{describe_value(call.returned)}, which Ray discards. Set self.ctx fields (or "
                "self.ctx.custom_data) instead"
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
    """Every static rule, by check id (the checks of :mod:`conformance.checks.callbackbase`),
    in order.

    When the spec does not load, only ``callbackbase.loading`` is reported; when the class
    cannot be built, ``callbackbase.shippable`` is left out (there is no instance to ship).
    """
    out = {"callbackbase.loading": loading_problems(spec)}
    if out["callbackbase.loading"] and not is_callback_base_class(spec):
        return out
    cls = spec if isinstance(spec, type) else resolve_spec(spec).target
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
        instance = construct_as_ray(
            cls,
            llm_config,
            ctx_kwargs=ctx_kwargs,
            callback_kwargs=callback_kwargs,
            raise_error_on_callback=raise_error_on_callback,
        )
    except Exception:
        return out
    out["callbackbase.shippable"] = shipping_problems(instance)
    return out


__all__ = [
    "RAY_MACHINERY",
    "constructor_problems",
    "error_problems",
    "hook_problems",
    "loading_problems",
    "run_problems",
    "shipping_problems",
    "static_problems",
]
