"""What the checks left unexercised in a callback's module: analysis and presentation.

:func:`callback_coverage` unites the arcs the items of one spec measured (see
:mod:`.measurer`) and analyses them with coverage.py (in memory, no data file, no
configuration file). Only code inside the module's functions, methods and lambdas counts:
module-level statements ran when the module was imported, which no phase does. The result is
the certificate's per-callback ``coverage`` object (limited, when the items recorded it, to the
lines of the callback's own code: its function or class, and the functions and classes of
the module it names)::

    {"file", "statements", "missing_lines": [..], "branches", "branches_missing": [[a, b], ..],
     "percent", "hints": ["line 9: under a comparison with 'pre_init', ...", ..]}

or ``{"measured": false, "reason": "..."}`` when nothing was measured. :func:`summary_lines`
renders it as the summary's compact block. A missed branch whose line compares with a
string that is a phase name (or close to one) gets a hint: dead branches are usually a
misspelt phase or a key that is never set.
"""

from __future__ import annotations

import ast
import difflib
import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

NOT_MEASURED: Final = "callback coverage not measured"
_SHOWN_BRANCHES: Final = 8


def callback_coverage(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The ``coverage`` object for one callback from its items' records, ``None`` when no
    item measured anything (no item ran in this process, or the plugin is off)."""
    file: str | None = None
    arcs: set[tuple[int, int]] = set()
    scope: set[int] | None = None
    reasons: list[str] = []
    for record in records:
        measured = (record or {}).get("coverage")
        if not measured:
            continue
        if "unmeasured" in measured:
            reasons.append(str(measured["unmeasured"]))
            continue
        file = str(measured["file"])
        arcs.update((int(a), int(b)) for a, b in measured["arcs"])
        if measured.get("scope"):
            scope = (scope or set()) | {int(n) for n in measured["scope"]}
    if reasons:
        return {"measured": False, "reason": reasons[0]}
    if file is None:
        return None
    try:
        return analyse(file, arcs, scope)
    except Exception as exc:  # a report is a bonus: never fail the run for it
        return {"measured": False, "reason": f"could not analyse {file}: {exc}"}


def analyse(file: str, arcs: set[tuple[int, int]], scope: set[int] | None = None) -> dict[str, Any]:
    """Statements and branches of ``file``'s functions (within ``scope``, the callback's
    lines, when given) that ``arcs`` did not reach."""
    import coverage

    cov = coverage.Coverage(data_file=None, branch=True, config_file=False)
    cov.get_data().add_arcs({file: arcs})
    with tempfile.TemporaryDirectory(prefix="raycallbacks-cov-") as tmp:
        out = Path(tmp) / "report.json"
        cov.json_report(morfs=[file], outfile=str(out))
        report = json.loads(out.read_text())
    (entry,) = report["files"].values()
    source = Path(file).read_text(encoding="utf-8")
    inside = function_lines(source)
    if scope is not None:
        inside &= scope
    executed = {n for n in entry["executed_lines"] if n in inside}
    missing = sorted(n for n in entry["missing_lines"] if n in inside)
    hit = [tuple(b) for b in entry.get("executed_branches", []) if b[0] in inside]
    missed = sorted(tuple(b) for b in entry.get("missing_branches", []) if b[0] in inside)
    total = len(executed) + len(missing) + len(hit) + len(missed)
    percent = 100.0 if total == 0 else 100.0 * (len(executed) + len(hit)) / total
    return {
        "measured": True,
        "file": file,
        "statements": len(executed) + len(missing),
        "missing_lines": missing,
        "branches": len(hit) + len(missed),
        "branches_missing": [list(b) for b in missed],
        "percent": round(percent, 1),
        "hints": branch_hints(source, missed),
    }


def function_lines(source: str) -> set[int]:
    """Line numbers inside function and method bodies and lambdas (for a lambda, also the
    first line of the statement holding it, where coverage.py counts it)."""
    tree = ast.parse(source)
    lines: set[int] = set()

    def visit(node: ast.AST, statement: ast.stmt | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = child.body[0].lineno
                lines.update(range(first, (child.end_lineno or first) + 1))
                continue
            if isinstance(child, ast.Lambda):
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
                if statement is not None:
                    lines.add(statement.lineno)
            visit(child, child if isinstance(child, ast.stmt) else statement)

    visit(tree, None)
    return lines


def branch_hints(source: str, missed: Iterable[tuple[int, int]]) -> list[str]:
    """For each missed branch whose line compares with a phase-like string, why it may be
    dead (one line each)."""
    from conformance.static import PhaseName
    from reference_runner import PHASES

    compared = _compared_strings(source)
    hints = []
    for start, _ in dict.fromkeys(missed):
        for text in compared.get(start, []):
            if text in PHASES:
                hints.append(
                    f"line {start}: under a comparison with phase {text!r}, which the runner "
                    "emits; the branch depends on something else (a key never set?)"
                )
            else:
                close = difflib.get_close_matches(text, PHASES, n=1, cutoff=0.5)
                if close or text.startswith(("pre_", "post_")):
                    hint = f"; did you mean {PhaseName(text, 'equals', '').closest!r}?"
                    hints.append(
                        f"line {start}: under a comparison with {text!r}, a phase name the "
                        f"runner never emits{hint}"
                    )
    return list(dict.fromkeys(hints))


def _compared_strings(source: str) -> dict[int, list[str]]:
    """String constants in comparisons, by the line of the comparison."""
    found: dict[int, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                for sub in ast.walk(operand):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found.setdefault(node.lineno, []).append(sub.value)
    return found


def ranges(numbers: Iterable[int]) -> str:
    """``1-3, 7, 9-10``."""
    parts: list[str] = []
    run: list[int] = []
    for n in sorted(set(numbers)):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            parts.append(_span(run))
        run = [n]
    if run:
        parts.append(_span(run))
    return ", ".join(parts)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def _arc(a: int, b: int) -> str:
    return f"{a}->{b if b > 0 else 'exit'}"


def summary_lines(coverage: Mapping[str, Any] | None) -> list[tuple[str, dict[str, bool]]]:
    """The compact block of one callback: percent, missed lines, missed branches, hints."""
    if not coverage:
        return []
    if not coverage.get("measured"):
        return [
            (
                f"    {NOT_MEASURED}: {coverage.get('reason')}; run the kit without it to see "
                "what the checks did not reach",
                {"yellow": True},
            )
        ]
    head = (
        f"    coverage of {Path(str(coverage['file'])).name}: {coverage['percent']:g}% "
        f"({coverage['statements']} statements, {coverage['branches']} branches of its code)"
    )
    lines: list[tuple[str, dict[str, bool]]] = [(head, {})]
    if coverage["missing_lines"]:
        lines.append((f"        missed lines: {ranges(coverage['missing_lines'])}", {}))
    branches = coverage["branches_missing"]
    if branches:
        shown = ", ".join(_arc(a, b) for a, b in branches[:_SHOWN_BRANCHES])
        more = f" (+{len(branches) - _SHOWN_BRANCHES} more)" if len(branches) > 8 else ""
        lines.append((f"        missed branches: {shown}{more}", {}))
    for hint in coverage.get("hints", []):
        lines.append((f"        {hint}", {"yellow": True}))
    return lines
