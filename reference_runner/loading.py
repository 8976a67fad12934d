"""Turning callback specs (callables or import paths) into callables.

Accepted forms (docs/design.md §The callback contract, *Loading*):

* a callable: returned as is (a class is instantiated with no arguments);
* ``"pkg.mod.attr"``: the longest importable module prefix, then attributes;
* ``"pkg.mod:attr"`` and ``"pkg.mod:Class.attr"``: module before the colon, attribute path
  after it.

A class (in either form) is instantiated with no arguments, so ``"pkg.mod.MyCallback"``
yields a ``MyCallback()`` instance. Every failure raises :class:`CallbackLoadError` (an
``ImportError``) naming the spec, what was tried and why it failed.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, cast

from .errors import CallbackLoadError
from .naming import safe_repr

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"
_COLON_FORM = re.compile(rf"^(?P<module>{_DOTTED}):(?P<attrs>{_DOTTED})$")
_DOT_FORM = re.compile(rf"^{_IDENTIFIER}(?:\.{_IDENTIFIER})+$")


#: Separates an import path from a deployment label in a spec (``pkg.mod:Class@app/model``):
#: the label names the deployment entry a ``CallbackBase`` class was certified for (see
#: :func:`split_label`); it never appears in an import path.
LABEL_SEPARATOR: Final = "@"


def split_label(spec: str) -> tuple[str, str | None]:
    """``(import path, label)`` of ``spec``: ``("pkg.mod:Class", "app/model")`` for
    ``"pkg.mod:Class@app/model"``, ``(spec, None)`` for a spec without a label. Every
    resolver imports the path alone, so one class can be certified once per deployment
    entry of a Serve config (docs/design.md §Ray is the judge)."""
    if isinstance(spec, str) and LABEL_SEPARATOR in spec:
        path, label = spec.split(LABEL_SEPARATOR, 1)
        return path, label
    return spec, None


def module_guess(spec: str) -> str:
    """The module a spec most likely names (``pkg.mod`` of ``pkg.mod.attr`` or
    ``pkg.mod:attr``), without importing anything: for messages about a spec that did not
    import, where the longest importable prefix is unknown."""
    spec, _ = split_label(spec)
    return spec.split(":", 1)[0] if ":" in spec else spec.rsplit(".", 1)[0]


def spec_form_problem(spec: str) -> str | None:
    """Return why ``spec`` is not a well-formed import path, or ``None`` if it is.

    Checks the form only; nothing is imported.
    """
    if not isinstance(spec, str):
        return f"expected a str import path, got {type(spec).__name__}"
    if spec != spec.strip():
        return "it has leading or trailing whitespace"
    if _COLON_FORM.match(spec) or _DOT_FORM.match(spec):
        return None
    if ":" not in spec and "." not in spec:
        return (
            "it is not fully qualified; write 'package.module.function' or "
            "'package.module:function'"
        )
    return (
        "it is not a valid import path; expected 'package.module.attribute' or "
        "'package.module:attribute' (identifiers separated by dots, at most one colon)"
    )


def load_callback(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Return the callable ``spec`` names (see the module docstring for the forms)."""
    if isinstance(spec, type):
        return _instantiate(spec, spec)
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise CallbackLoadError(
            spec,
            f"expected a callable or an import path str, got {type(spec).__name__}",
        )
    target = resolve_spec(spec).target
    if isinstance(target, type):
        return _instantiate(spec, target)
    if not callable(target):
        raise CallbackLoadError(
            spec,
            f"it resolves to {describe_value(target)}, which is not "
            "callable; point the spec at a function, a class, or an object with __call__",
        )
    return target  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ResolvedSpec:
    """What an import-path spec names: its module, the attribute path in that module, and
    the object itself (a class is *not* instantiated here)."""

    spec: str
    module_name: str
    attrs: tuple[str, ...]
    module: ModuleType
    target: Any

    @property
    def colon_form(self) -> str:
        """``pkg.mod:attr.path``"""
        return f"{self.module_name}:{'.'.join(self.attrs)}"

    @property
    def dot_form(self) -> str:
        """``pkg.mod.attr.path``"""
        return f"{self.module_name}.{'.'.join(self.attrs)}"


def resolve_spec(spec: str) -> ResolvedSpec:
    """Import the module ``spec`` names and walk its attribute path, without calling or
    instantiating anything; raise :class:`CallbackLoadError` naming what failed.

    The one spec resolver: :func:`load_callback`, the ``CallbackBase`` detection of
    :mod:`reference_runner.ray_callback_base` and the conformance kit all use it.
    """
    labelled = spec
    spec, _ = split_label(spec)
    problem = spec_form_problem(spec)
    if problem is not None:
        raise CallbackLoadError(labelled, problem)
    if ":" in spec:
        module_name, attr_path = spec.split(":", 1)
        module = _import(spec, module_name)
        attrs = attr_path.split(".")
    else:
        module, module_name, attrs = _import_longest_prefix(spec)
    target = _resolve(spec, module, module_name, attrs)
    return ResolvedSpec(spec, module_name, tuple(attrs), module, target)


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (
            exc.name is not None
            and module_name != exc.name
            and not module_name.startswith(exc.name + ".")
        ):
            raise CallbackLoadError(
                spec,
                f"importing module {module_name!r} failed because it imports missing "
                f"module {exc.name!r}: {exc}",
            ) from exc
        raise CallbackLoadError(
            spec,
            f"no module named {module_name!r} (tried importing it with sys.path "
            f"{_path_hint()}); install the package or add its folder to PYTHONPATH",
        ) from exc
    except Exception as exc:
        raise CallbackLoadError(
            spec,
            f"importing module {module_name!r} raised {type(exc).__name__}: {exc}",
        ) from exc


def _import_longest_prefix(spec: str) -> tuple[Any, str, list[str]]:
    """For ``a.b.c.d`` import ``a.b.c``, else ``a.b``, else ``a``: the longest prefix that
    is a module; the rest is the attribute path."""
    parts = spec.split(".")
    tried: list[str] = []
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        tried.append(module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name or (
                exc.name is not None and module_name.startswith(exc.name + ".")
            ):
                continue  # this prefix is not a module; try a shorter one
            raise CallbackLoadError(
                spec,
                f"importing module {module_name!r} failed because it imports missing "
                f"module {exc.name!r}: {exc}",
            ) from exc
        except Exception as exc:
            raise CallbackLoadError(
                spec,
                f"importing module {module_name!r} raised {type(exc).__name__}: {exc}",
            ) from exc
        return module, module_name, parts[cut:]
    raise CallbackLoadError(
        spec,
        f"no module found (tried {', '.join(repr(t) for t in tried)} with sys.path "
        f"{_path_hint()}); install the package or add its folder to PYTHONPATH",
    )


def _resolve(spec: str, module: Any, module_name: str, attrs: list[str]) -> Any:
    target = module
    walked = module_name
    for attr in attrs:
        try:
            target = getattr(target, attr)
        except AttributeError:
            available = sorted(name for name in dir(target) if not name.startswith("_"))
            hint = _closest(attr, available)
            raise CallbackLoadError(
                spec,
                f"{walked!r} has no attribute {attr!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + (f" (public names: {', '.join(available[:12])})" if available else ""),
            ) from None
        walked = f"{walked}.{attr}"
    return target


def _instantiate(spec: object, cls: type) -> Callable[..., Any]:
    if not any("__call__" in vars(klass) for klass in cls.__mro__ if klass is not object):
        raise CallbackLoadError(
            spec,
            f"class {cls.__qualname__} has no __call__(phase, config, data) method, so its "
            "instances are not callbacks",
        )
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        required = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            raise CallbackLoadError(
                spec,
                f"class {cls.__qualname__} needs constructor arguments {required}; a class "
                "spec is instantiated with no arguments, so give them defaults, or point "
                "the spec at a module-level instance or factory function instead",
            )
    try:
        instance = cls()
    except Exception as exc:
        raise CallbackLoadError(
            spec,
            f"instantiating class {cls.__qualname__}() raised {type(exc).__name__}: {exc}",
        ) from exc
    return cast(Callable[..., Any], instance)


def _closest(name: str, candidates: list[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _path_hint() -> str:
    shown = [p or "<cwd>" for p in sys.path[:4]]
    more = f", ... {len(sys.path) - 4} more" if len(sys.path) > 4 else ""
    return "[" + ", ".join(shown) + more + "]"


def describe_value(value: Any, limit: int = 70) -> str:
    """``<type name> <repr>``, the ``repr`` cut to ``limit`` characters: how the runtime's
    error messages show a value (``int 42``, ``str 'TOKENIZER_ONLY'``). Never raises."""
    return f"{type(value).__name__} {safe_repr(value, limit)}"


def import_path_of(obj: Any) -> str | None:
    """Return ``"module:qualname"`` if importing it yields ``obj`` itself, else ``None``
    (lambdas, closures, instances, objects defined in ``__main__``)."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module_name or not qualname or "<" in qualname or module_name == "__main__":
        return None
    module = sys.modules.get(module_name)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return f"{module_name}:{qualname}" if target is obj else None
