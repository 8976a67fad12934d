"""Loading rules: the spec names one callable that loads anywhere Ray may load it."""

from __future__ import annotations

import contextlib
import inspect
import json
from typing import Any

from conformance.context import CheckContext
from conformance.failure import DOES_NOT_LOAD, Advice, CheckFailed, CheckSkipped, describe
from conformance.probe import PendingProbe, ProbeResult, start_probe
from conformance.registry import CALLBACK, CALLBACKBASE, check
from reference_runner import CallbackLoadError, LLMConfig, load_callback
from reference_runner.loading import ResolvedSpec, import_path_of, resolve_spec


@check(
    "loading.importable",
    rule="The spec imports and names an object ('pkg.mod.attr' or 'pkg.mod:attr').",
    why="""Ray Serve loads callbacks from their import path on every replica; a spec that
    does not import fails every replica at start-up, far from where it was written.""",
    runs_on="driver",
    needs_callback=False,
)
def importable(ctx: CheckContext) -> str | None:
    halt = ctx.subject.halted
    if halt is not None and not halt.imported:  # refused by the probe, or interrupted here
        raise CheckFailed(
            expected=f"the spec {ctx.subject.spec!r} to import its module and name an object",
            happened=f"in a fresh interpreter, {halt.reason}; the kit never imported it in "
            "the test process"
            if halt.probed
            else f"in the test process, {halt.reason}",
            fix=halt.fix,
        )
    try:
        resolved = ctx.subject.resolve()
    except CallbackLoadError as exc:
        raise CheckFailed(
            expected=f"the spec {ctx.subject.spec!r} to import its module and name an object",
            happened=f"loading it raised {type(exc).__name__}: {exc}",
            fix="run pytest from the folder that holds the module (or install its package, "
            "or add its folder to PYTHONPATH), and check the module and attribute names",
        ) from None
    if not callable(resolved.target):
        raise CheckFailed(
            expected=f"the spec {ctx.subject.spec!r} to name a callable",
            happened=f"it names {_what(resolved.target)}, which is not callable",
            fix="point the spec at a function, a class, or an object with __call__",
        )
    kind = ctx.subject.kind
    return f"{resolved.colon_form} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}"


@check(
    "loading.no-arg-class",
    styles=(CALLBACK,),
    rule="A class spec can be instantiated without arguments.",
    why="""A spec that names a class is instantiated with no arguments on each replica;
    required constructor arguments make every replica fail to start.""",
    runs_on="driver",
    needs_callback=False,
)
def no_arg_class(ctx: CheckContext) -> str | None:
    resolved = _resolved_or_skip(ctx)
    if not isinstance(resolved.target, type):
        return "not applicable: the spec names no class"
    try:
        ctx.subject.load()
    except CallbackLoadError as exc:
        halt = ctx.subject.halted
        raise CheckFailed(
            expected=f"{resolved.target.__qualname__}() to build a callback with no arguments",
            happened=f"{exc.reason}",
            fix=halt.fix
            if halt is not None
            else "give every constructor parameter a default, or point the spec at a "
            "module-level instance (my_callback = MyCallback(device='cuda'))",
        ) from None
    return None


@check(
    "loading.signature",
    styles=(CALLBACK,),
    rule="The callable accepts (phase, config, data) positionally.",
    why="""The runner calls callback(phase, config, data) on every phase; a different
    signature raises TypeError at the first phase on every replica.""",
    runs_on="driver",
)
def signature(ctx: CheckContext) -> str | None:
    callback = ctx.subject.load()
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):
        return "signature not introspectable (a builtin); not checked"
    try:
        sig.bind("pre_initialization", object(), {})
    except TypeError as exc:
        raise CheckFailed(
            expected="a callable that accepts three positional arguments (phase, config, data)",
            happened=f"its signature is {ctx.subject.spec}{sig}: binding three arguments "
            f"raised TypeError: {exc}",
            fix="define it as def callback(phase, config, data) (or __call__(self, phase, "
            "config, data) on a class); extra parameters need defaults",
        ) from None
    target = callback if inspect.isfunction(callback) else type(callback).__call__
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        raise CheckFailed(
            expected="a function that returns None or a mapping (or a coroutine function)",
            happened=f"{ctx.subject.spec} is a generator function: calling it returns a "
            "generator, which the runner rejects",
            fix="return the dict instead of yielding it",
        )
    return None


@check(
    "loading.both-forms",
    rule="The dot form and the colon form of the spec name the same object.",
    why="""Configs written by different people use either form ('pkg.mod.cb' and
    'pkg.mod:cb'); if they name different objects, the same deployment behaves differently
    depending on who wrote its YAML.""",
    runs_on="driver",
)
def both_forms(ctx: CheckContext) -> str | None:
    resolved = ctx.subject.resolve()
    forms = {resolved.colon_form, resolved.dot_form}
    results: dict[str, Any] = {f"{ctx.subject.spec} (as first loaded)": resolved.target}
    for form in sorted(forms):
        try:
            results[form] = resolve_spec(form).target
        except CallbackLoadError as exc:
            results[form] = exc
    if all(_same_object(t, resolved.target) for t in results.values()):
        return f"{' and '.join(sorted(forms))} name the same object"
    lines = [f"{form} -> {_what(value)}" for form, value in results.items()]
    raise CheckFailed(
        expected=f"{resolved.dot_form!r} and {resolved.colon_form!r} to name the same object",
        happened="\n".join(lines),
        fix="a submodule or module attribute with the same name shadows the callback; rename "
        "one of them so that both spellings reach the callback",
    )


@check(
    "loading.fresh-interpreter",
    rule="The spec loads in a fresh interpreter, with nothing borrowed from the test session.",
    why="""Ray workers are fresh processes: they get the installed packages and the paths
    you configure, not the sys.path entries, conftest imports or fixtures of a pytest run.""",
    runs_on="driver",
    fresh_process=True,
)
def fresh_interpreter(ctx: CheckContext) -> str | None:
    result = _probe(ctx)
    if result.timed_out:
        return "import did not finish in time (see loading.import-time)"
    if result.error is not None:
        raise CheckFailed(
            expected=f"{ctx.subject.spec!r} to load in a new Python process started in "
            f"{ctx.settings.cwd} with sys.path = installed packages + "
            f"{list(ctx.settings.import_paths)}",
            happened=f"it loads in the test session but the new process raised {result.error}",
            fix="do not rely on paths or modules the test session sets up (conftest.py "
            "sys.path edits, rootdir insertion of test folders); install the package or add "
            "its folder to PYTHONPATH (Ray workers need the same)",
        )
    if result.build_error is not None and _builds_in_driver(ctx):
        raise CheckFailed(
            expected=f"{ctx.subject.spec!r} to be built as Ray builds it (with its "
            "callback_kwargs) in a new Python process, as on every replica",
            happened=f"it builds in the test session but the new process raised "
            f"{result.build_error}",
            fix="do not rely in __init__ on state the test session sets up (environment, "
            "imports done by conftest.py or fixtures); read what you need from self.kwargs",
        )
    return f"imported in {result.import_s:.3f} s" if result.import_s is not None else None


def _builds_in_driver(ctx: CheckContext) -> bool:
    """A ``CallbackBase`` subclass builds in the test process (else
    ``callbackbase.constructor`` is the check that says why)."""
    try:
        ctx.subject.ray_instance(ctx.settings.base_config())
    except Exception:
        return False
    return True


@check(
    "loading.import-time",
    rule=(
        "Importing the callback's module takes less than the import limit (10 s, or the "
        "timeout if lower)."
    ),
    why="""Every replica imports the module before serving; a slow import (model loading,
    network calls at import time) delays every scale-up and can trip Ray's start-up
    timeouts.""",
    runs_on="driver",
    fresh_process=True,
)
def import_time(ctx: CheckContext) -> str | None:
    limit = ctx.settings.import_limit_s
    halt = ctx.subject.halted
    if halt is not None and not halt.imported:  # the import probe at configure time
        raise CheckFailed(
            expected=f"importing {ctx.subject.source.get('module')!r} to take less than "
            f"{limit:g} s",
            happened=f"in a fresh interpreter, {halt.reason}; the kit never imported it in "
            "the test process",
            fix=halt.fix,
        )
    result = _probe(ctx)
    if result.timed_out:
        raise CheckFailed(
            expected=f"importing {_module(ctx)!r} to take less than {limit:g} s",
            happened=f"it was still importing after {limit:g} s in a fresh interpreter",
            fix="move slow work (downloads, model loading, network calls) out of module import "
            "and into the phase that needs it",
        )
    if result.import_s is not None and result.import_s > limit:  # ended within the grace
        raise CheckFailed(
            expected=f"importing {_module(ctx)!r} to take less than {limit:g} s",
            happened=f"it took {result.import_s:.2f} s",
            fix="move slow work out of module import",
        )
    return f"{result.import_s:.3f} s" if result.import_s is not None else None


@check(
    "loading.config-roundtrip",
    styles=(CALLBACK,),
    rule=(
        "An LLMConfig holding the spec validates and round-trips through JSON and YAML to "
        "the same callback."
    ),
    why="""Serving configs live in YAML and travel as JSON; a callback entry that does not
    survive the trip is silently dropped or changed in the deployed config.""",
    runs_on="driver",
)
def config_roundtrip(ctx: CheckContext) -> str | None:
    spec = ctx.subject.spec
    base = ctx.settings.base_config()
    fields = base.model_dump(mode="json", exclude={"callbacks"})
    try:
        config = LLMConfig(**fields, callbacks=[spec])
    except Exception as exc:
        raise CheckFailed(
            expected=f"LLMConfig(callbacks=[{spec!r}]) to validate",
            happened=f"{type(exc).__name__}: {exc}",
            fix="write the spec as 'package.module.attribute' or 'package.module:attribute'",
        ) from None
    for how, dump, load in (
        ("JSON", config.model_dump_json, LLMConfig.model_validate_json),
        ("YAML", config.to_yaml, LLMConfig.from_yaml),
    ):
        again = load(dump())
        if again != config:
            raise CheckFailed(
                expected=f"the config to come back equal from {how}",
                happened=f"callbacks went from {config.callbacks!r} to {again.callbacks!r}",
                fix="use a plain import path as the spec",
            )
        reloaded = load_callback(again.callbacks[0])
        if not _same_callback(reloaded, ctx.subject.load()):
            raise CheckFailed(
                expected=f"the spec read back from {how} to load the same callback",
                happened=f"it loaded {describe(reloaded)}, the original is "
                f"{describe(ctx.subject.load())}",
                fix="make the spec name a module-level object that stays the same on every "
                "import (not one built anew by a module __getattr__)",
            )
    target = ctx.subject.resolve().target
    claimed = _claimed_path(target)
    if claimed is not None and import_path_of(target) is None:
        raise CheckFailed(
            expected=f"a config holding the callback object itself to be writable as YAML/JSON "
            f"(its __module__:__qualname__ {claimed!r} leading back to it)",
            happened=f"{claimed!r} names {_what(_try_resolve(claimed))}, not the callback "
            f"({_what(target)}), so LLMConfig(callbacks=[<the callback>]).to_yaml() fails",
            fix="keep __module__ and __qualname__ truthful: do not let functools.wraps copy the "
            "name of a function that stays importable under that name (export the decorated "
            "function under its own name, or decorate it where it is defined)",
        )
    return None


def _claimed_path(target: Any) -> str | None:
    """``module:qualname`` a function or class says it has (``None`` for lambdas, local
    functions, instances)."""
    if not (inspect.isfunction(target) or isinstance(target, type)):
        return None
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def _try_resolve(spec: str) -> Any:
    try:
        return resolve_spec(spec).target
    except CallbackLoadError as exc:
        return exc


@check(
    "loading.shippable",
    rule=(
        "What Ray pickles of it (a CallbackBase instance) is rebuilt on a Ray worker; a spec "
        "loaded by its path only gets advice."
    ),
    why="""Ray pickles a CallbackBase instance (inside LLMConfig) into every worker node's
    download task, and an object placed directly in LLMConfig.callbacks travels the same
    way; objects holding locks, open files, clients or classes a worker cannot import fail
    there, not on your laptop. A spec is loaded by its path on each node: nothing pickles
    the object it names.""",
    runs_on="each-cluster",
    fresh_process=True,
)
def shippable(ctx: CheckContext) -> str | None:
    callback = _shipped(ctx)
    cluster = ctx.require_cluster()
    if cluster.name == "live":
        try:
            cluster.ship(callback, timeout_s=ctx.settings.timeout_s)  # type: ignore[attr-defined]
        except Exception as exc:
            return _not_shipped(
                ctx,
                expected=f"{describe(callback)} to be rebuilt on a Ray worker",
                happened=f"{type(exc).__name__}: {exc}",
            )
        return "rebuilt on a Ray worker of the live cluster"
    result = _probe(ctx)
    if result.pickle_error is not None:
        return _not_shipped(
            ctx,
            expected=f"{describe(callback)} to pickle with Ray's cloudpickle",
            happened=f"pickling it in the driver raised {result.pickle_error}",
        )
    if result.ship_error is not None or result.timed_out:
        return _not_shipped(
            ctx,
            expected=f"{describe(callback)} to be rebuilt in a fresh worker process",
            happened=f"unpickling it there raised {result.ship_error or 'nothing: it timed out'}",
        )
    return "rebuilt in a fresh interpreter standing in for a Ray worker"


def _not_shipped(ctx: CheckContext, *, expected: str, happened: str) -> Advice:
    """Fail when Ray really pickles what does not ship (a ``CallbackBase`` instance); for a
    spec, which each node loads by its path, return the finding as advice."""
    if ctx.subject.style == CALLBACKBASE:
        raise CheckFailed(expected=expected, happened=happened, fix=_SHIP_FIX)
    return Advice(
        f"advice: the object {ctx.subject.spec!r} names does not ship ({happened}); nothing "
        "pickles it while LLMConfig.callbacks holds the spec (each node loads it by its "
        "path), but placing the object itself in LLMConfig.callbacks would fail on the "
        f"cluster. To allow that: {_SHIP_FIX}"
    )


_SHIP_FIX = (
    "keep only picklable state on the callback (create locks, clients and open files lazily "
    "inside the phase that needs them, or drop them in __getstate__), and define its class "
    "in an importable module"
)


def _shipped(ctx: CheckContext) -> Any:
    """What travels to the workers: the loaded callback, or for a ``CallbackBase`` subclass
    the instance Ray builds (with its ``ctx``); skip when that cannot be built."""
    if ctx.subject.style != CALLBACKBASE:
        return ctx.subject.load()
    try:
        return ctx.subject.ray_instance(ctx.settings.base_config())
    except Exception:
        raise CheckSkipped(
            "the class cannot be built the way Ray builds it (see callbackbase.constructor)"
        ) from None


def _resolved_or_skip(ctx: CheckContext) -> ResolvedSpec:
    try:
        return ctx.subject.resolve()
    except CallbackLoadError:
        raise CheckSkipped(DOES_NOT_LOAD.format(rule="loading.importable")) from None


def start_probe_early(ctx: CheckContext) -> None:
    """Start the fresh-interpreter probe of ``ctx.subject`` in the background (idempotent),
    so that it runs while the other checks do; nothing happens if the spec does not load."""
    with contextlib.suppress(CallbackLoadError):
        _pending(ctx)


def _pending(ctx: CheckContext) -> PendingProbe:
    def make() -> PendingProbe:
        subject = ctx.subject
        try:
            shipped: Any = _shipped(ctx)
            ship = True
        except (CallbackLoadError, CheckSkipped):
            shipped, ship = None, False
        return start_probe(
            subject.spec,
            subject.resolve().module_name,
            cwd=ctx.settings.cwd,
            import_paths=ctx.settings.import_paths,
            import_limit_s=ctx.settings.import_limit_s,
            timeout_s=ctx.settings.timeout_s,
            shipped=shipped,
            ship=ship,
            construct=subject.style != CALLBACKBASE,
            ray_build=_ray_build(ctx),
        )

    pending: PendingProbe = ctx.subject.memo("probe", make)
    return pending


def _ray_build(ctx: CheckContext) -> tuple[str, dict[str, Any]] | None:
    """What the probe needs to build a ``CallbackBase`` subclass as Ray does: the base
    config as JSON and the subject's ``callback_kwargs`` (``None`` for other styles, or
    when either is not JSON)."""
    if ctx.subject.style != CALLBACKBASE:
        return None
    try:
        json.dumps(ctx.subject.callback_kwargs)
        return ctx.settings.base_config().model_dump_json(), ctx.subject.callback_kwargs
    except (TypeError, ValueError):
        return None


def _probe(ctx: CheckContext) -> ProbeResult:
    result = _pending(ctx).result()
    ctx.subject.note_loaded(result.modules)
    return result


def _module(ctx: CheckContext) -> str:
    return ctx.subject.resolve().module_name


def _what(value: Any) -> str:
    if isinstance(value, Exception):
        return f"error: {value}"
    if inspect.ismodule(value):
        return f"module {value.__name__} (not the callback)"
    if inspect.isfunction(value):
        code = value.__code__
        return (
            f"function {value.__module__}:{value.__qualname__} defined at "
            f"{code.co_filename}:{code.co_firstlineno}"
        )
    return describe(value)


def _same_object(a: Any, b: Any) -> bool:
    """The same object, or the same bound method: each attribute access builds a new bound
    method object, so ``instance.method`` is compared by what it names (the same function
    bound to the same ``__self__``)."""
    if a is b:
        return True
    return (
        inspect.ismethod(a)
        and inspect.ismethod(b)
        and a.__func__ is b.__func__
        and a.__self__ is b.__self__
    )


def _same_callback(a: Any, b: Any) -> bool:
    """The same function or bound method, or instances of the same class (a class spec
    builds new ones)."""
    return _same_object(a, b) or (type(a) is type(b) and not inspect.isroutine(a))
