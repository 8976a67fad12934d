"""Small units of the plugin: waivers, verdicts, the plan of items."""

from __future__ import annotations

import pytest

from conformance import CALLBACK, checks_for
from pytest_raycallbacks.kit.plan import ItemPlan, plan_items
from pytest_raycallbacks.kit.waivers import Waiver, find_waiver, parse_waivers
from pytest_raycallbacks.report.results import FAILED, NOT_RUN, PASSED, SKIPPED, Entry, verdict


def test_waivers_parse_with_and_without_a_spec() -> None:
    assert parse_waivers(
        ["merge.ownership=ticket 1", "errors.host-failures@a.b:c= why = not "]
    ) == (
        Waiver("merge.ownership", "ticket 1"),
        Waiver("errors.host-failures", "why = not", "a.b:c"),
    )


@pytest.mark.parametrize("raw", ["merge.ownership", "=reason", "merge.ownership=", "Merge.X=y"])
def test_bad_waivers_are_usage_errors(raw: str) -> None:
    with pytest.raises(pytest.UsageError):
        parse_waivers([raw])


def test_a_spec_specific_waiver_wins() -> None:
    general, specific = Waiver("a.b", "all"), Waiver("a.b", "this one", "m.cb")
    assert find_waiver([general, specific], "a.b", "m.cb") is specific
    assert find_waiver([general, specific], "a.b", "other.cb") is general
    assert find_waiver([specific], "a.b", "other.cb") is None


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([PASSED, PASSED], "certified"),
        ([PASSED, "waived"], "certified"),
        ([PASSED, SKIPPED], "incomplete"),
        ([PASSED, NOT_RUN], "incomplete"),
        ([SKIPPED, FAILED], "rejected"),
        ([], "incomplete"),
    ],
)
def test_verdicts(outcomes: list[str], expected: str) -> None:
    plan = ItemPlan("x.y", "m.cb", "fake")
    assert verdict([Entry(plan, outcome=o) for o in outcomes]) == expected


def test_the_plan_has_every_check_once_per_place_it_runs() -> None:
    plans = plan_items(["m.cb"], ("fake", "live"))
    assert len(plans) == sum(len(c.clusters_for(("fake", "live"))) for c in checks_for(CALLBACK))
    assert ItemPlan("cluster.in-worker", "m.cb", "live") in plans
    assert ItemPlan("cluster.in-worker", "m.cb", "fake") not in plans
    assert ItemPlan("merge.ownership", "m.cb", "fake") in plans
    assert len({p.name for p in plans}) == len(plans)
