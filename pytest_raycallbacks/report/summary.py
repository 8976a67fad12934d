"""The terminal summary: one block per callback.

Each block gives the verdict, the counts of passed / failed / skipped / waived / not-run
checks, the clusters used (fake; live with physical or simulated GPUs), and for every
failed check its id, where it ran, its rule and the first lines of what happened; the
advice passing checks gave; then stale waivers and skipped checks with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .results import (
    FAILED,
    INCONCLUSIVE,
    NOT_RUN,
    PASSED,
    SKIPPED,
    WAIVED,
    Entry,
    Results,
    clusters_of,
    counts,
    verdict,
)

_MARKUP: Final = {
    "certified": {"green": True},
    "rejected": {"red": True},
    "incomplete": {"yellow": True},
    "inconclusive": {"yellow": True},
}
_HAPPENED_LINES: Final = 3
_LISTED_SKIPS: Final = 3


def describe_cluster(description: Mapping[str, Any]) -> str:
    """``fake (in memory, ...)`` or ``live (simulated GPUs, ...)`` from a cluster's
    description (``record["cluster_description"]``)."""
    name = str(description.get("name", "?"))
    summary = description.get("summary")
    return f"{name} ({summary})" if summary else name


def render(
    results: Results,
    specs: tuple[str, ...],
    extra: Callable[[str], list[tuple[str, dict[str, bool]]]] | None = None,
) -> list[tuple[str, dict[str, bool]]]:
    """The summary as ``(line, markup)`` pairs, ready for a terminal writer; ``extra(spec)``
    adds lines at the end of a callback's block (the callback coverage)."""
    lines: list[tuple[str, dict[str, bool]]] = []
    for spec in specs:
        entries = results.for_spec(spec)
        result = verdict(entries)
        counted = counts(entries)
        lines.append((f"{spec}: {result.upper()}", {"bold": True, **_MARKUP[result]}))
        summary = ", ".join(
            f"{n} {outcome}" for outcome, n in counted.items() if n or outcome != INCONCLUSIVE
        )
        used = [describe_cluster(d) for d in clusters_of(entries)]
        lines.append((f"    {summary}; clusters: {'; '.join(used) if used else 'none'}", {}))
        lines.extend(_style_line(entries))
        for entry in entries:
            if entry.outcome == FAILED:
                rule = (entry.record or {}).get("rule", "")
                lines.append(
                    (f"    FAILED {entry.plan.check} [{entry.plan.cluster}]: {rule}", {"red": True})
                )
                for text in _happened(entry)[:_HAPPENED_LINES]:
                    lines.append((f"        {text}", {}))
        for entry in entries:
            if entry.outcome == INCONCLUSIVE:
                gap = (entry.record or {}).get("inconclusive") or {}
                lines.append(
                    (
                        f"    INCONCLUSIVE {entry.plan.check} [{entry.plan.cluster}]: "
                        f"{gap.get('where', '?')} needs {gap.get('needs', '?')}, which this "
                        "environment lacks",
                        {"yellow": True},
                    )
                )
                if gap.get("todo"):
                    lines.append((f"        what to do: {gap['todo']}", {}))
        lines.extend(_advice(entries))
        for entry in entries:
            if entry.outcome == WAIVED:
                lines.append(
                    (
                        f"    waived {entry.plan.check} [{entry.plan.cluster}]: {entry.waiver}",
                        {"yellow": True},
                    )
                )
            if entry.stale_waiver:
                lines.append(
                    (
                        f"    stale waiver: {entry.plan.check} [{entry.plan.cluster}] passes now; "
                        f"drop --raycallbacks-waive {entry.plan.check}",
                        {"yellow": True},
                    )
                )
        lines.extend(_skipped(entries))
        if extra is not None:
            lines.extend(extra(spec))
        lines.extend(_not_run(entries))
    return lines


def _not_run(entries: list[Entry]) -> list[tuple[str, dict[str, bool]]]:
    """Not-run checks grouped by the reason the kit gave (a halted callback, the run's
    bound), then those without one (deselected, or the run stopped early)."""
    by_reason: dict[str, int] = {}
    for entry in entries:
        if entry.outcome == NOT_RUN:
            reason = (entry.detail or "").splitlines()[0] if entry.detail else ""
            by_reason[reason] = by_reason.get(reason, 0) + 1
    lines: list[str] = []
    for reason, n in by_reason.items():
        if reason:
            lines.append(f"    {n} check(s) not run: {reason.removeprefix('not run: ')}")
        else:
            lines.append(f"    {n} check(s) did not run (deselected, or the run stopped early)")
    return [(text, {"yellow": True}) for text in lines]


def _advice(entries: list[Entry]) -> list[tuple[str, dict[str, bool]]]:
    """One line per passed check that gave advice (``record["advice"]``)."""
    lines: list[tuple[str, dict[str, bool]]] = []
    for entry in entries:
        advice = (entry.record or {}).get("advice") if entry.outcome == PASSED else None
        if advice:
            text = str(advice).removeprefix("advice: ")
            lines.append((f"    advice {entry.plan.check} [{entry.plan.cluster}]: {text}", {}))
    return lines


def _happened(entry: Entry) -> list[str]:
    if entry.failure:
        return [
            line.strip() for line in entry.failure.get("happened", "").splitlines() if line.strip()
        ]
    return [entry.detail or "no details"]


def _skipped(entries: list[Entry]) -> list[tuple[str, dict[str, bool]]]:
    """Skipped checks grouped by reason (a callback that does not load skips 24 at once)."""
    by_reason: dict[str, list[str]] = {}
    for entry in entries:
        if entry.outcome == SKIPPED:
            reason = (entry.detail or "no reason given").splitlines()[0]
            by_reason.setdefault(reason, []).append(f"{entry.plan.check} [{entry.plan.cluster}]")
    lines = []
    for reason, checks in by_reason.items():
        shown = ", ".join(checks) if len(checks) <= _LISTED_SKIPS else f"{len(checks)} checks"
        lines.append((f"    skipped {shown}: {reason}", {"yellow": True}))
    return lines


def _style_line(entries: list[Entry]) -> list[tuple[str, dict[str, bool]]]:
    """For a Ray ``CallbackBase`` subclass, one line saying so and how many checks apply."""
    subject = next(
        (e.record["subject"] for e in entries if e.record and e.record.get("subject")), None
    )
    if not subject or subject.get("style") != "callbackbase":
        return []
    checks = len({e.plan.check for e in entries})
    return [(f"    {subject.get('kind')}: {checks} checks apply (callbackbase.* included)", {})]
