"""The chain check as a pytest item (``--raycallbacks-chain``).

With several ``--raycallbacks-conformance`` specs and ``--raycallbacks-chain``, the kit
collects one more item, ``raycallbacks::chain[<spec1>+<spec2>+...-fake]`` (``-k chain``
selects it), after the individual checks. It runs :func:`conformance.chain.certify_chain` on
the in-memory fake cluster with fresh instances of the callbacks, in the given order and in
the other orders, and fails when the chain is rejected (a reserved key replaced whole, a
failure in the given order, or an order-dependent outcome), with the collisions,
differences and fixes as its message.

:class:`ChainPlugin` (registered by the kit) attaches the item's record to its reports (also
from xdist workers) and keeps :attr:`ChainPlugin.result` for the summary and certificate:
the record (``ChainReport.as_dict()``) and the item's outcome.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any, Final

import pytest

from .results import FAILED, NOT_RUN, PASSED, SKIPPED

PLUGIN_NAME: Final = "raycallbacks-chain"
CHAIN_KEY: Final = pytest.StashKey[dict[str, Any]]()
_WHERE: Final = "fake"


def chain_name(specs: tuple[str, ...]) -> str:
    """``chain[a.cb+b.cb-fake]``."""
    return f"chain[{'+'.join(specs)}-{_WHERE}]"


def chain_check(request: pytest.FixtureRequest) -> None:
    """Certify the callbacks of ``--raycallbacks-conformance`` as one chain, in the given
    order (collisions) and in other orders (order dependence)."""
    from conformance.chain import certify_chain
    from conformance.context import HOST_PLACEMENT_WAIT_S

    from .kit import KIT_KEY

    kit = request.config.stash[KIT_KEY]
    record = request.node.stash[CHAIN_KEY]
    specs = kit.settings.specs
    from reference_runner import CallbackLoadError

    for spec in specs:
        try:
            kit.subject(spec).load()
        except CallbackLoadError as exc:
            record["skipped"] = f"{spec} does not load ({exc}); see its loading checks"
            pytest.skip(record["skipped"])
    settings = kit.check_settings(request.getfixturevalue("tmp_path_factory"))
    host = kit.host(_WHERE, request)
    assert host is not None  # the fake cluster, never None for a cluster name
    report = certify_chain(
        host,
        [(spec, kit.subject(spec).fresh) for spec in specs],
        settings.base_config(),
        timeout_s=settings.timeout_s,
        placement_timeout_s=min(HOST_PLACEMENT_WAIT_S, settings.timeout_s),
    )
    record.update(report.as_dict())
    if report.verdict != "certified":
        pytest.fail("\n".join(failure_lines(record)), pytrace=False)


def failure_lines(record: dict[str, Any]) -> list[str]:
    """Why the chain is rejected: reserved collisions, order dependence, fixes."""
    lines = [f"the chain {' -> '.join(record['specs'])} is rejected"]
    for collision in record["collisions"]:
        if collision["reserved"]:
            lines.append(f"  collision: {describe_collision(collision)}")
    if record["order_dependent"]:
        lines.append(f"  the outcome depends on the order ({len(record['orders_tried'])} tried):")
        lines += [f"    {describe_difference(d)}" for d in record["differences"][:6]]
        for c in record.get("collisions_in_other_orders", [])[:6]:
            lines.append(f"    in order {' -> '.join(c['order'])}: {describe_collision(c)}")
    if record.get("given_order_error"):
        lines.append(f"  the given order fails: {record['given_order_error']}")
    lines += [f"  fix: {fix}" for fix in record["fixes"]]
    return lines


def describe_collision(c: dict[str, Any]) -> str:
    what = {"replaced": "replaced whole", "overwritten": "overwrote", "removed": "removed"}
    lost = f" (lost: {', '.join(c['lost'])})" if c["lost"] else ""
    return (
        f"{c['second']['callback']} {what[c['kind']]} {c['key']!r} in "
        f"{c['second']['phase']!r}: {c['first']['callback']} had set {c['first']['value']} in "
        f"{c['first']['phase']!r}, now {c['second']['value']}{lost}"
    )


def describe_difference(d: dict[str, Any]) -> str:
    return (
        f"order {' -> '.join(d['order'])}: {d['field']} is {d['this_order']} "
        f"(given order: {d['given']})"
    )


def collect_chain(session: pytest.Session, specs: tuple[str, ...]) -> list[pytest.Item]:
    """The chain item, in the ``raycallbacks`` collector's style (marker ``raycallbacks``,
    keyword ``chain``)."""
    from .suite import SUITE_NAME, ConformanceSuite

    suite = ConformanceSuite.from_parent(
        session, path=Path(__file__), name=SUITE_NAME, nodeid=SUITE_NAME
    )
    item = pytest.Function.from_parent(suite, name=chain_name(specs), callobj=chain_check)
    item.stash[CHAIN_KEY] = {"specs": list(specs)}
    item.add_marker(pytest.mark.raycallbacks)
    item.extra_keyword_matches.update({"chain", _WHERE})
    item.user_properties.append(("raycallbacks_chain", "+".join(specs)))
    suite._items = [item]
    return list(session.genitems(suite))


class ChainPlugin:
    """Reports and results of the chain item (see the module docstring)."""

    def __init__(self, specs: tuple[str, ...]) -> None:
        self.specs = specs
        self.outcome = NOT_RUN
        self.record: dict[str, Any] = {"specs": list(specs)}
        self.detail: str | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        if CHAIN_KEY in item.stash:
            record: dict[str, Any] = item.stash[CHAIN_KEY]
            report.raycallbacks_chain = dict(record)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "raycallbacks_chain", None)
        if record is None:
            return
        self.record = record
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                self.outcome = PASSED
            elif report.skipped:
                self.outcome = SKIPPED
                self.detail = record.get("skipped")
            else:
                self.outcome = FAILED
                if "verdict" not in record:
                    lines = [ln for ln in report.longreprtext.splitlines() if ln.strip()]
                    self.detail = f"the chain check raised: {lines[-1] if lines else '?'}"
        elif report.when == "teardown" and report.failed:
            self.outcome = FAILED

    @property
    def verdict(self) -> str:
        if self.outcome == FAILED:
            return "rejected"
        if self.outcome == PASSED:
            return str(self.record.get("verdict", "certified"))
        return "incomplete"

    def certificate_entry(self) -> dict[str, Any]:
        """The certificate's ``chain`` object."""
        entry = {
            "specs": list(self.specs),
            "verdict": self.verdict,
            "collisions": [],
            "order_dependent": None,
            "orders_tried": [],
            "differences": [],
        }
        entry.update({k: v for k, v in self.record.items() if k != "skipped"})
        entry["verdict"] = self.verdict
        entry["outcome"] = self.outcome
        entry["detail"] = self.detail
        return entry

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        """The summary's block for the chain."""
        markup = {"certified": {"green": True}, "rejected": {"red": True}}
        verdict = self.verdict
        head = f"chain {' -> '.join(self.specs)}: {verdict.upper()}"
        lines = [(head, {"bold": True, **markup.get(verdict, {"yellow": True})})]
        if "verdict" not in self.record:
            reason = self.detail or "the chain check did not run (deselected, or stopped early)"
            return [*lines, (f"    {reason}", {"yellow": True})]
        record = self.record
        collisions = record["collisions"]
        reserved = sum(1 for c in collisions if c["reserved"])
        dependent = "order-dependent" if record["order_dependent"] else "order-independent"
        if not record.get("reproducible", True):
            dependent = "not reproducible even in the same order (order dependence not judged)"
        lines.append(
            (
                f"    {len(collisions)} collision(s), {reserved} on reserved keys; outcome "
                f"{dependent} ({len(record['orders_tried'])} orders tried)",
                {},
            )
        )
        for c in collisions:
            lines.append(
                (f"    collision: {describe_collision(c)}", {"red": True} if c["reserved"] else {})
            )
        for d in record["differences"][:6]:
            lines.append((f"    {describe_difference(d)}", {}))
        for c in record.get("collisions_in_other_orders", [])[:6]:
            order = " -> ".join(c["order"])
            lines.append((f"    in order {order}: {describe_collision(c)}", {}))
        if record.get("given_order_error"):
            lines.append((f"    the given order fails: {record['given_order_error']}", {}))
        lines += [(f"    fix: {fix}", {"yellow": True}) for fix in record["fixes"]]
        return lines
