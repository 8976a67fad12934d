"""The catalogue: every check, in order, with its rendering as text and as a Markdown table.

Importing this module registers the checks of :mod:`conformance.checks` (one module per
category: ``loading``, ``phases``, ``merge``, ``errors``, ``cluster``, and ``callbackbase``
for Ray's ``CallbackBase`` subclasses). Each check applies to one or both styles of
callback (:data:`~conformance.registry.STYLES`); :func:`checks_for` picks those of a style.
"""

from __future__ import annotations

import difflib
from typing import Final

from . import checks  # noqa: F401 - registers the checks
from .registry import CALLBACK, CALLBACKBASE, STYLES, Check, registered

#: Bumped whenever a check is added, retired or changes what it accepts.
CATALOGUE_VERSION: Final = "1.2"
CATALOGUE: Final[tuple[Check, ...]] = registered()
_BY_ID: Final = {c.id: c for c in CATALOGUE}


def get_check(check_id: str) -> Check:
    """The check ``check_id``; ``KeyError`` naming the closest ids when there is none."""
    try:
        return _BY_ID[check_id]
    except KeyError:
        close = difflib.get_close_matches(check_id, list(_BY_ID), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no conformance check {check_id!r}{hint}") from None


def checks_for(style: str) -> tuple[Check, ...]:
    """The checks that apply to callbacks of ``style``, in catalogue order."""
    if style not in STYLES:
        raise ValueError(f"unknown callback style {style!r}; one of {STYLES}")
    return tuple(c for c in CATALOGUE if c.applies_to(style))


#: How the listings name each style, and a check that applies to both.
STYLE_LABELS: Final = {CALLBACK: "callback", CALLBACKBASE: "CallbackBase"}


def applies_to(c: Check) -> str:
    """``both``, ``callback`` or ``CallbackBase``: the styles ``c`` applies to."""
    if set(c.styles) == set(STYLES):
        return "both"
    return ", ".join(STYLE_LABELS[s] for s in c.styles)


def _runs_on(c: Check) -> str:
    """``driver``, ``fake``, or the clusters an ``each-cluster`` check supports."""
    return ", ".join(c.clusters) if c.runs_on == "each-cluster" else c.runs_on


def text_listing() -> str:
    """The catalogue as aligned text: id, category, where it runs, the styles it applies
    to (``both``, ``callback`` for ``(phase, config, data)`` callbacks, ``CallbackBase`` for
    Ray's ``CallbackBase`` subclasses), rule."""
    width = max(len(c.id) for c in CATALOGUE)
    category = max(len(c.category) for c in CATALOGUE)
    lines = [
        f"raycallbacks conformance catalogue {CATALOGUE_VERSION} ({len(CATALOGUE)} checks: "
        f"{len(checks_for(CALLBACK))} for callbacks, {len(checks_for(CALLBACKBASE))} for "
        "Ray CallbackBase subclasses)",
        "",
    ]
    for c in CATALOGUE:
        lines.append(
            f"{c.id:<{width}}  {c.category:<{category}}  {_runs_on(c):<10}  "
            f"{applies_to(c):<12}  {c.rule}"
        )
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The catalogue as the Markdown table of docs/conformance.md."""
    rows = [
        "| id | category | runs on | applies to | rule | why it matters on a cluster |",
        "|---|---|---|---|---|---|",
    ]
    for c in CATALOGUE:
        cells = (f"`{c.id}`", c.category, _runs_on(c), applies_to(c), c.rule, c.why)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
