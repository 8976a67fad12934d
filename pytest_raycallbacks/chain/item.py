"""The chain check as a pytest item (``--raycallbacks-chain``).

With several ``--raycallbacks-conformance`` specs and ``--raycallbacks-chain``, the kit
collects one more item, ``raycallbacks::chain[<spec1>+<spec2>+...-fake]`` (``-k chain``
selects it), after the individual checks. It runs :func:`conformance.chain.certify_chain` on
the in-memory fake cluster with fresh instances of the callbacks, in the given order and in
the other orders, and fails when the chain is rejected (a reserved key replaced whole, a
failure in the given order, or an order-dependent outcome), with the collisions,
differences and fixes as its message.

The item carries what it needs: the specs and the kit's :class:`ChainServices` (under
:data:`RUN_KEY`), and its record (under :data:`CHAIN_KEY`, ``ChainReport.as_dict()`` once
it ran).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import pytest

from pytest_raycallbacks.kit.collection import ConformanceSuite, collect_in_suite

from .text import failure_lines

if TYPE_CHECKING:
    from conformance import Cluster, Settings, Subject

CLUSTER: Final = "fake"
CHAIN_KEY: Final = pytest.StashKey[dict[str, Any]]()


class ChainServices(Protocol):
    """What the chain item needs from the kit (:class:`pytest_raycallbacks.kit.Kit` is one)."""

    def subject(self, spec: str) -> Subject:
        """The callback under test for ``spec``."""
        ...

    def check_settings(self, tmp_path_factory: pytest.TempPathFactory) -> Settings:
        """The catalogue's settings of the run."""
        ...

    def cluster(self, name: str, request: pytest.FixtureRequest) -> Cluster | None:
        """The cluster called ``name``, as the checks see it."""
        ...


@dataclass(frozen=True)
class ChainRun:
    """The callbacks of the chain, in the given order, and the kit's services."""

    specs: tuple[str, ...]
    services: ChainServices


RUN_KEY: Final = pytest.StashKey[ChainRun]()


def chain_name(specs: tuple[str, ...]) -> str:
    """``chain[a.cb+b.cb-fake]``."""
    return f"chain[{'+'.join(specs)}-{CLUSTER}]"


def chain_check(request: pytest.FixtureRequest) -> None:
    """Certify the callbacks of ``--raycallbacks-conformance`` as one chain, in the given
    order (collisions) and in other orders (order dependence)."""
    from conformance.bench import PLACEMENT_WAIT_S
    from conformance.chain import certify_chain
    from reference_runner import CallbackLoadError

    run = request.node.stash[RUN_KEY]
    record = request.node.stash[CHAIN_KEY]
    kit = run.services
    for spec in run.specs:
        try:
            kit.subject(spec).load()
        except CallbackLoadError as exc:
            record["skipped"] = f"{spec} does not load ({exc}); see its loading checks"
            pytest.skip(record["skipped"])
        halt = kit.subject(spec).halted
        if halt is not None:  # the kit runs no more of its code
            record["skipped"] = halt.summary
            pytest.skip(record["skipped"])
    settings = kit.check_settings(request.getfixturevalue("tmp_path_factory"))
    if settings.budget is not None:  # the run's bound (docs/design.md §Bounds on user code)
        from pytest_raycallbacks.kit.run_bound import chain_bound_s

        if settings.budget.remaining_s() < chain_bound_s(run.specs, settings.timeout_s):
            settings.budget.reached = True
            record["skipped"] = settings.budget.reason
            pytest.skip(record["skipped"])
    cluster = kit.cluster(CLUSTER, request)
    if cluster is None:
        raise RuntimeError(f"the kit gave no {CLUSTER!r} cluster for the chain check")
    report = certify_chain(
        cluster,
        [(spec, kit.subject(spec).fresh) for spec in run.specs],
        settings.base_config(),
        timeout_s=settings.timeout_s,
        placement_timeout_s=min(PLACEMENT_WAIT_S, settings.timeout_s),
    )
    record.update(report.as_dict())
    if report.verdict != "certified":
        pytest.fail("\n".join(failure_lines(record)), pytrace=False)


def collect_chain(session: pytest.Session, run: ChainRun) -> list[pytest.Item]:
    """The chain item, in the ``raycallbacks`` collector (marker ``raycallbacks``, keywords
    ``chain`` and ``fake``)."""

    def make_items(suite: ConformanceSuite) -> list[pytest.Item]:
        item = pytest.Function.from_parent(suite, name=chain_name(run.specs), callobj=chain_check)
        item.stash[RUN_KEY] = run
        item.stash[CHAIN_KEY] = {"specs": list(run.specs)}
        item.add_marker(pytest.mark.raycallbacks)
        item.extra_keyword_matches.update({"chain", CLUSTER})
        item.user_properties.append(("raycallbacks_chain", "+".join(run.specs)))
        return [item]

    return collect_in_suite(session, make_items)
