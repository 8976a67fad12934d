"""The catalogue: every check, in order, with its rendering as text and as a Markdown table.

Importing this module registers the checks of each category module (one module per
category: :mod:`~conformance.loading`, :mod:`~conformance.phases`, :mod:`~conformance.merge`,
:mod:`~conformance.errors`, :mod:`~conformance.cluster`).
"""

from __future__ import annotations

import difflib
from typing import Final

from . import cluster, errors, loading, merge, phases  # noqa: F401 - registers the checks
from .registry import Check, registered

#: Bumped whenever a check is added, retired or changes what it accepts.
CATALOGUE_VERSION: Final = "1.0"
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


def _runs_on(c: Check) -> str:
    if c.where == "local":
        return "driver"
    if c.where == "host":
        return "fake"
    return ", ".join(c.clusters)


def text_listing() -> str:
    """The catalogue as aligned text: id, category, where it runs, rule."""
    width = max(len(c.id) for c in CATALOGUE)
    lines = [
        f"raycallbacks conformance catalogue {CATALOGUE_VERSION} ({len(CATALOGUE)} checks)",
        "",
    ]
    for c in CATALOGUE:
        lines.append(f"{c.id:<{width}}  {c.category:<8}  {_runs_on(c):<10}  {c.rule}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The catalogue as the Markdown table of docs/conformance.md."""
    rows = [
        "| id | category | runs on | rule | why it matters on a cluster |",
        "|---|---|---|---|---|",
    ]
    for c in CATALOGUE:
        cells = (f"`{c.id}`", c.category, _runs_on(c), c.rule, c.why)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
