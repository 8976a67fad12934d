"""Reading a callback's code: which phase names it compares against, how it can exit.

Some mistakes never show at run time: a callback that tests ``phase == "pre_init"`` simply
never fires (the source design's Example 3), and one that calls ``sys.exit()`` on a branch the
kit does not reach still kills a serving replica one day. This module reads the callback's
source (its function; every method of its class; module-level helpers it calls, one level
deep) with :mod:`ast`, and falls back to the string constants of its code objects when there
is no source.
"""

from __future__ import annotations

import ast
import difflib
import functools
import inspect
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from reference_runner import PHASES

#: Parameter names taken to hold the phase, besides a callback's first parameter.
PHASE_NAMES: Final = frozenset({"phase", "stage"})
_PHASE_LIKE = re.compile(r"^(pre|post)_[a-z0-9_]+$")
_EXIT_CALLS: Final = {
    ("sys", "exit"): "sys.exit()",
    ("os", "_exit"): "os._exit()",
    ("os", "abort"): "os.abort()",
    (None, "exit"): "exit()",
    (None, "quit"): "quit()",
}
_BASE_EXCEPTIONS: Final = frozenset(
    {"SystemExit", "KeyboardInterrupt", "BaseException", "GeneratorExit"}
)


@dataclass(frozen=True)
class PhaseName:
    """A phase name the code compares against. ``how`` is ``"equals"``, ``"prefix"`` or
    ``"suffix"``; ``source_location`` is ``file:line`` when known."""

    name: str
    how: str
    source_location: str

    @property
    def emitted(self) -> bool:
        """Whether the runner ever emits a phase this comparison can match."""
        if self.how == "prefix":
            return any(p.startswith(self.name) for p in PHASES)
        if self.how == "suffix":
            return any(p.endswith(self.name) for p in PHASES)
        return self.name in PHASES

    @property
    def closest(self) -> str:
        """The real phase name closest to this one: the longest shared beginning first
        (``pre_init`` -> ``pre_initialization``), then overall similarity."""

        def score(phase: str) -> tuple[int, float]:
            name = self.name.lower()
            shared = next(
                (i for i, (a, b) in enumerate(zip(name, phase, strict=False)) if a != b), None
            )
            if shared is None:
                shared = min(len(name), len(phase))
            return shared, difflib.SequenceMatcher(None, self.name.lower(), phase).ratio()

        return max(PHASES, key=score)


@dataclass(frozen=True)
class Exit:
    """A statement that ends the process or raises a non-``Exception``; ``source_location``
    is ``file:line``."""

    what: str
    source_location: str


@dataclass(frozen=True)
class _Source:
    tree: ast.AST
    file: str
    first_line: int
    globals: dict[str, Any]
    phase_vars: frozenset[str]


def functions_of(obj: Any) -> list[types.FunctionType]:
    """The Python functions a callback consists of: the function itself, or every function
    defined in its class (for a class or an instance), unwrapping partials and methods."""
    if isinstance(obj, functools.partial):
        obj = obj.func
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        return [inspect.unwrap(obj)]  # type: ignore[list-item]
    cls = obj if isinstance(obj, type) else type(obj)
    found = []
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins":
            continue
        for value in vars(klass).values():
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                found.append(value)
    return found


def phase_names(obj: Any) -> list[PhaseName]:
    """Every phase name the callback's code compares the phase against."""
    found: dict[tuple[str, str], PhaseName] = {}
    sources = list(_sources(obj))
    if sources:
        for source in sources:
            for item in _phase_names_in(source):
                found.setdefault((item.name, item.how), item)
    else:
        for fn in functions_of(obj):
            for text in _code_strings(fn.__code__):
                if _PHASE_LIKE.match(text):
                    location = f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"
                    found.setdefault((text, "equals"), PhaseName(text, "equals", location))
    return list(found.values())


def exits(obj: Any) -> list[Exit]:
    """Every ``sys.exit()``-like call and ``raise`` of a non-``Exception`` in the code."""
    found: list[Exit] = []
    for source in _sources(obj):
        for node in ast.walk(source.tree):
            what = _exit_of(node)
            if what is not None:
                found.append(Exit(what, _location_of(source, node)))
    return sorted(found, key=_in_file_order)


# ---------------------------------------------------------------------- sources


def _sources(obj: Any) -> Iterator[_Source]:
    """Parsed sources of the callback's functions and the module-level helpers they call.

    In the entry point (the function, or ``__call__``) the first parameter holds the
    phase; elsewhere only variables named like :data:`PHASE_NAMES` do.
    """
    seen: set[int] = set()
    first_param = _phase_parameter(obj)
    entry_vars = PHASE_NAMES | ({first_param} if first_param else set())
    functions = functions_of(obj)
    entry = functions[0] if isinstance(obj, types.FunctionType | functools.partial) else None
    pending: list[tuple[types.FunctionType, frozenset[str], int]] = [
        (fn, entry_vars if fn is entry or fn.__name__ == "__call__" else PHASE_NAMES, 0)
        for fn in functions
    ]
    while pending:
        fn, phase_vars, depth = pending.pop(0)
        if id(fn.__code__) in seen:
            continue
        seen.add(id(fn.__code__))
        source = _parse(fn, phase_vars)
        if source is None:
            continue
        yield source
        if depth < 1:
            pending.extend((helper, PHASE_NAMES, depth + 1) for helper in _helpers_called(source))


def _parse(fn: types.FunctionType, phase_vars: frozenset[str]) -> _Source | None:
    try:
        lines, first = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError):
        return None
    text = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # a lambda inside a longer statement: parse the statement's first line alone
        try:
            tree = ast.parse(textwrap.dedent(lines[0]).rstrip().rstrip("\\,"))
        except SyntaxError:
            return None
    return _Source(tree, file, max(first, 1), dict(fn.__globals__), phase_vars)


def _phase_parameter(obj: Any) -> str | None:
    """The name of the parameter that receives the phase."""
    target = obj
    if isinstance(obj, type):
        target = getattr(obj, "__call__", None)  # noqa: B004
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    if isinstance(obj, type) and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params[0].name if params else None


def _helpers_called(source: _Source) -> list[types.FunctionType]:
    helpers = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            value = source.globals.get(node.func.id)
            if isinstance(value, types.FunctionType):
                helpers.append(value)
    return helpers


def _code_strings(code: types.CodeType) -> Iterator[str]:
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, types.CodeType):
            yield from _code_strings(const)
        elif isinstance(const, tuple | frozenset):
            yield from (c for c in const if isinstance(c, str))


def _in_file_order(found: Exit) -> tuple[str, int]:
    file, line = found.source_location.rsplit(":", 1)
    return file, int(line)


def _location_of(source: _Source, node: ast.AST) -> str:
    """``file:line`` of ``node`` in the parsed ``source``."""
    line = source.first_line + getattr(node, "lineno", 1) - 1
    return f"{source.file}:{line}"


# ---------------------------------------------------------------------- phase names


def _phase_names_in(source: _Source) -> Iterator[PhaseName]:
    is_phase = _is_phase_var(source.phase_vars)
    for node in ast.walk(source.tree):
        location = _location_of(source, node)
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(is_phase(o) for o in operands):
                for operand in operands:
                    if not is_phase(operand):
                        for text in _strings(operand, source.globals, keys=True):
                            yield PhaseName(text, "equals", location)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in ("startswith", "endswith") and is_phase(node.func.value):
                how = "prefix" if attr == "startswith" else "suffix"
                for arg in node.args[:1]:
                    for text in _strings(arg, source.globals, keys=False):
                        yield PhaseName(text, how, location)
            elif attr == "get" and node.args and is_phase(node.args[0]):
                for text in _strings(node.func.value, source.globals, keys=True):
                    yield PhaseName(text, "equals", location)
        elif isinstance(node, ast.Subscript) and is_phase(node.slice):
            for text in _strings(node.value, source.globals, keys=True):
                yield PhaseName(text, "equals", location)
        elif isinstance(node, ast.Match) and is_phase(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue):
                        for text in _strings(pattern.value, source.globals, keys=False):
                            yield PhaseName(text, "equals", location)


def _is_phase_var(names: frozenset[str]) -> Callable[[ast.AST], bool]:
    def is_phase(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in names
        if isinstance(node, ast.Attribute):  # self.phase
            return node.attr in names
        return False

    return is_phase


def _strings(node: ast.AST, namespace: dict[str, Any], *, keys: bool) -> list[str]:
    """String constants ``node`` stands for: a literal, a literal collection (dict keys),
    or a module-level name bound to one."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    if isinstance(node, ast.Dict) and keys:
        return [
            k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
        ]
    if isinstance(node, ast.Name):
        value = namespace.get(node.id)
        if isinstance(value, str):
            return [value]
        if isinstance(value, tuple | list | set | frozenset) or (keys and isinstance(value, dict)):
            return [v for v in value if isinstance(v, str)]
    return []


# ---------------------------------------------------------------------- exits


def _exit_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return _EXIT_CALLS.get((func.value.id, func.attr))
        if isinstance(func, ast.Name):
            return _EXIT_CALLS.get((None, func.id))
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name) and exc.id in _BASE_EXCEPTIONS:
            return f"raise {exc.id}"
    return None
