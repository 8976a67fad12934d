"""docs/conformance.md cannot drift from the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import CATALOGUE, markdown_table

DOC = Path(__file__).parents[2] / "docs" / "conformance.md"


def documented_table() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- catalogue:start -->\n(.*?)<!-- catalogue:end -->", text, re.S)
    assert match, "docs/conformance.md lost its catalogue markers"
    return match.group(1)


def test_the_documented_table_is_the_generated_one() -> None:
    assert documented_table() == markdown_table(), (
        "regenerate the table: python -m conformance --markdown"
    )


def test_list_checks_and_the_docs_name_the_same_checks_in_the_same_order(
    project: pytest.Pytester,
) -> None:
    listed = project.runpytest_inprocess("--raycallbacks-list-checks").stdout.lines
    ids = {c.id for c in CATALOGUE}
    from_cli = [line.split()[0] for line in listed if line.split() and line.split()[0] in ids]
    from_doc = re.findall(r"^\| `([a-z]+\.[a-z0-9-]+)` \|", documented_table(), re.M)
    assert from_cli == from_doc == [c.id for c in CATALOGUE]


def test_every_check_is_documented_with_a_rule_and_a_reason() -> None:
    for check in CATALOGUE:
        assert check.rule.endswith(".") and len(check.rule) < 140, check.id
        assert len(check.why) > 60, check.id
        assert check.function.__module__ == f"conformance.checks.{check.category}", check.id
