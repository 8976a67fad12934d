"""The conformance suite as pytest items.

:func:`collect_suite` builds one collector, ``raycallbacks``, holding one item per planned
check (see :mod:`.plan`): item ``merge.ownership[mymod.cb-fake]`` is check
``merge.ownership`` for callback ``mymod.cb`` on the fake cluster, so ``-k "merge and fake"``
selects what it says. Every item runs :func:`conformance_check` with the
``raycallbacks_check`` fixture, carries the ``raycallbacks`` marker (and
``raycallbacks_live`` on the live cluster), and records check, callback and cluster as
JUnit properties. :func:`collect_in_suite` lets the kit's other items (the chain) join the
same collector.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest

from .plan import PLAN_KEY, RECORD_KEY, ItemPlan

SUITE_NAME: Final = "raycallbacks"


def conformance_check(raycallbacks_check: Any) -> None:
    """Run one conformance check; the item's name says which, for which callback, where."""
    raycallbacks_check.run()


class ConformanceSuite(pytest.Module):
    """The collector of the conformance items (this module stands in as its object)."""

    _items: list[pytest.Item]

    def _getobj(self) -> ModuleType:
        return sys.modules[__name__]

    def collect(self) -> Iterable[pytest.Item]:
        return list(self._items)


def collect_in_suite(
    session: pytest.Session, make_items: Callable[[ConformanceSuite], list[pytest.Item]]
) -> list[pytest.Item]:
    """The items ``make_items`` builds under a ``raycallbacks`` collector, collected through
    pytest's own machinery (collection hooks, ``-k``/``-m`` and ``--deselect`` apply to them
    as to any test)."""
    suite = ConformanceSuite.from_parent(
        session, path=Path(__file__), name=SUITE_NAME, nodeid=SUITE_NAME
    )
    suite._items = make_items(suite)
    return list(session.genitems(suite))


def collect_suite(session: pytest.Session, plans: Iterable[ItemPlan]) -> list[pytest.Item]:
    """The conformance items (see the module docstring). Per callback they run in catalogue
    order, except that the checks waiting for a fresh interpreter come last (it was started
    by the first check and works meanwhile)."""
    from conformance import CATALOGUE, get_check

    order = {c.id: i for i, c in enumerate(CATALOGUE)}
    planned = list(plans)
    specs = list(dict.fromkeys(p.spec for p in planned))
    ordered = sorted(
        planned,
        key=lambda p: (specs.index(p.spec), get_check(p.check).fresh_process, order[p.check]),
    )

    def make_items(suite: ConformanceSuite) -> list[pytest.Item]:
        return [_item(suite, plan) for plan in ordered]

    return collect_in_suite(session, make_items)


def _item(suite: ConformanceSuite, plan: ItemPlan) -> pytest.Item:
    from conformance import get_check

    check = get_check(plan.check)
    item = pytest.Function.from_parent(suite, name=plan.name, callobj=conformance_check)
    item.stash[PLAN_KEY] = plan
    item.stash[RECORD_KEY] = {**plan.record(), "category": check.category, "rule": check.rule}
    item.add_marker(pytest.mark.raycallbacks)
    if plan.cluster == "live":
        item.add_marker(pytest.mark.raycallbacks_live)
    item.extra_keyword_matches.update({check.category, plan.cluster})
    item.user_properties.extend(
        [
            ("raycallbacks_check", plan.check),
            ("raycallbacks_callback", plan.spec),
            ("raycallbacks_cluster", plan.cluster),
        ]
    )
    return item
