"""conformance.registry and the package layout: what a check runs on, where checks live."""

from __future__ import annotations

import pytest

import conformance
from conformance import CATALOGUE, CATEGORIES, RUNS_ON, CheckContext, Settings, Subject
from conformance.registry import Check, check


def _check(runs_on: str, clusters: tuple[str, ...] = ("fake", "live")) -> Check:
    return Check(
        id="cluster.example",
        category="cluster",
        rule="An example.",
        why="An example.",
        function=lambda ctx: None,
        runs_on=runs_on,  # type: ignore[arg-type]
        clusters=clusters,
    )


@pytest.mark.parametrize(
    ("runs_on", "clusters", "requested", "expected"),
    [
        ("driver", ("fake", "live"), ("fake", "live"), ("local",)),
        ("fake", ("fake", "live"), ("live",), ("fake",)),
        ("each-cluster", ("fake", "live"), ("live", "fake"), ("live", "fake")),
        ("each-cluster", ("live",), ("fake",), ()),
        ("each-cluster", ("live",), ("fake", "live"), ("live",)),
    ],
)
def test_clusters_for(
    runs_on: str, clusters: tuple[str, ...], requested: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert _check(runs_on, clusters).clusters_for(requested) == expected


def test_check_rejects_an_unknown_runs_on() -> None:
    with pytest.raises(ValueError, match=r"runs_on='host' must be one of"):
        check("loading.example", rule="An example.", why="An example.", runs_on="host")  # type: ignore[arg-type]


def test_every_check_lives_in_the_module_of_its_category() -> None:
    assert {c.category for c in CATALOGUE} == set(CATEGORIES)
    assert {c.runs_on for c in CATALOGUE} == set(RUNS_ON)
    for c in CATALOGUE:
        assert c.function.__module__ == f"conformance.checks.{c.category}", c.id


def test_the_old_host_names_are_aliases() -> None:
    from conformance import host

    assert conformance.Host is conformance.Cluster is host.Host
    assert conformance.HostScope is conformance.ClusterScope is host.HostScope
    assert conformance.LiveHost is conformance.WorkerCluster is host.LiveHost


def test_a_context_without_a_cluster_runs_on_the_driver() -> None:
    ctx = CheckContext(subject=Subject("examples.basic:callback"), settings=Settings())
    assert ctx.cluster_name == "local"
    with pytest.raises(RuntimeError, match="needs a cluster, but it runs 'local'"):
        ctx.require_cluster()
    with pytest.raises(RuntimeError, match="needs a cluster"):
        ctx.require_bench()
