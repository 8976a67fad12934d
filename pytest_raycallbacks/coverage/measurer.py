"""Measuring the callback's own module with coverage.py while its checks run.

:class:`CoverageMeasurer` is a pytest plugin the kit registers (as ``raycallbacks-coverage``,
so ``-p no:raycallbacks-coverage`` turns it off), giving it the kit's callbacks under test.
Around the call of every conformance item
that runs in this process (``local`` and ``fake`` items; live checks run in Ray workers) it
starts an in-memory, branch-measuring :class:`coverage.Coverage` limited to the callback's
module file, stops it right after, and writes what was measured into the item's record
(``record["coverage"]``), which travels with the report (also from xdist workers):

* ``{"file": path, "arcs": [[from, to], ...], "scope": [line, ...]}``: the arcs executed
  so far in this process for that spec (cumulative; unions of them are what
  :mod:`.report` analyses), and the lines of the callback's own code
  (:func:`scope_lines`), to which the report is limited;
* ``{"unmeasured": reason}``: nothing measured, because another measurement is active (the
  user's ``pytest-cov`` or ``coverage run``, a debugger: on Python 3.11 coverage uses
  ``sys.settrace``, one tracer per thread, so ours would displace theirs), or coverage.py is
  not installed.

Contracts: ours is never started while another tracer or coverage measurement is active; it
never writes a data file (``data_file=None``) and reads no configuration file; after every
item the previous tracer (none) is back in place.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import types
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_raycallbacks.kit.plan import PLAN_KEY, RECORD_KEY

if TYPE_CHECKING:
    from conformance import Subject

PLUGIN_NAME: Final = "raycallbacks-coverage"
#: The items measured: those that run the callback in this process.
MEASURED_CLUSTERS: Final = ("local", "fake")
_QUIET: Final = ["no-data-collected", "module-not-imported", "module-not-measured"]
_COLLECTOR_BUILD = threading.Lock()


def _no_stack_summary(*args: Any, **kwargs: Any) -> str:
    return "(built by pytest-raycallbacks' coverage measurer)"


def other_measurement() -> str | None:
    """Why a measurement of ours must not start now, or ``None`` when it may."""
    try:
        import coverage
    except ImportError:
        return "coverage.py is not installed (pip install coverage)"
    current = coverage.Coverage.current()
    if current is not None:
        return (
            f"another coverage measurement is active (coverage.py {coverage.__version__}, "
            "e.g. pytest-cov or `coverage run`)"
        )
    tracer = sys.gettrace() or threading.gettrace()
    if tracer is not None:
        return f"another coverage measurement is active (a tracer is installed: {_name(tracer)})"
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None and monitoring.get_tool(monitoring.COVERAGE_ID) is not None:
        return "another coverage measurement is active (sys.monitoring's coverage tool is in use)"
    return None


def _name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


class CoverageMeasurer:
    """The plugin (see the module docstring); one :class:`coverage.Coverage` per spec.
    ``subject(spec)`` is the kit's callback under test for ``spec``."""

    def __init__(self, subject: Callable[[str], Subject]) -> None:
        self._subject = subject
        self._measurements: dict[str, Any] = {}
        self._scopes: dict[str, list[int] | None] = {}

    def _coverage_for(self, spec: str, file: str) -> Any:
        import coverage

        cov = self._measurements.get(spec)
        if cov is None:
            cov = coverage.Coverage(data_file=None, branch=True, config_file=False, include=[file])
            cov.set_option("run:disable_warnings", list(_QUIET))
            self._measurements[spec] = cov
        return cov

    def _start(self, cov: Any) -> None:
        """``cov.start()``, without the stack summary coverage.py takes for its own debug
        output when it builds its collector on the first start (``Collector.origin``, from
        ``inspect.stack()``: the first call stats every loaded module, ~60 ms with Ray
        imported, a fifth of a one-callback run's checks). Where coverage.py has no such
        hook the start is the plain one."""
        import coverage.collector as collector

        summary = getattr(collector, "short_stack", None)
        if summary is None or getattr(cov, "_collector", None) is not None:
            cov.start()
            return
        with _COLLECTOR_BUILD:
            collector.short_stack = _no_stack_summary  # type: ignore[attr-defined]
            try:
                cov.start()
            finally:
                collector.short_stack = summary  # type: ignore[attr-defined]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        plan = item.stash.get(PLAN_KEY, None)
        if plan is None or plan.cluster not in MEASURED_CLUSTERS:
            return (yield)
        record = item.stash[RECORD_KEY]
        file = self._module_file(plan.spec)
        if file is None:
            return (yield)
        reason = other_measurement()
        if reason is not None:
            record["coverage"] = {"unmeasured": reason}
            return (yield)
        try:
            cov = self._coverage_for(plan.spec, file)
            self._start(cov)
        except Exception as exc:  # never fail a check because the measurement could not start
            record["coverage"] = {"unmeasured": f"coverage.py could not start: {exc}"}
            return (yield)
        try:
            return (yield)
        finally:
            cov.stop()
            arcs = cov.get_data().arcs(file) or set()
            if plan.spec not in self._scopes:
                self._scopes[plan.spec] = self._scope_of(plan.spec, file)
            record["coverage"] = {
                "file": file,
                "arcs": sorted([a, b] for a, b in arcs),
                "scope": self._scopes[plan.spec],
            }

    def _module_file(self, spec: str) -> str | None:
        """The file of the spec's module, when it has one (a spec that does not import has
        none worth measuring)."""
        subject = self._subject(spec)
        try:
            subject.resolve()
        except Exception:
            return None
        file = subject.source.get("file")
        return str(file) if file and str(file).endswith(".py") else None

    def _scope_of(self, spec: str, file: str) -> list[int] | None:
        try:
            return scope_lines(self._subject(spec).load(), file)
        except Exception:
            return None  # not loadable, or no source: the whole module's functions count


def scope_lines(callback: Any, file: str) -> list[int]:
    """The lines of ``file`` that make up ``callback``: its function (or the methods of its
    class), and the functions and classes of the same file they name, transitively. Other
    callbacks that share the module do not count against this one."""
    from conformance.static import functions_of

    target = os.path.realpath(file)
    pending = list(functions_of(callback))
    seen: set[int] = set()
    lines: set[int] = set()
    while pending:
        function = pending.pop()
        code = function.__code__
        if id(code) in seen or os.path.realpath(code.co_filename) != target:
            continue
        seen.add(id(code))
        try:
            source, first = inspect.getsourcelines(function)
        except (OSError, TypeError):
            continue
        lines.update(range(first, first + len(source)))
        for name in _names(code):
            value = function.__globals__.get(name)
            if isinstance(value, types.FunctionType):
                pending.append(value)
            elif isinstance(value, type):
                pending.extend(functions_of(value))
    return sorted(lines)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names
