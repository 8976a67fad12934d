"""The differential scenario table (``tests/fake_ray/differential``).

* Offline: every scenario runs on a fake cluster of the reference topology and must give
  the outcome real Ray 2.60 gave on that topology (``differential_golden.json``, recorded
  with ``RAYCALLBACKS_RECORD_GOLDEN=1 pytest -m live tests/fake_ray/test_differential.py``).
* Live (``-m live``): every scenario runs on a real cluster (``differential_ray_cluster``)
  and on a fake cluster mirroring its nodes, and the outcomes must be equal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.fake_ray import FakeRayCluster
from tests.fake_ray.differential import (
    REFERENCE_NODES,
    SCENARIOS,
    Env,
    Scenario,
    discover,
    mirror_nodes,
    wait_until_idle,
)

GOLDEN = Path(__file__).with_name("differential_golden.json")
IDS = [s.name for s in SCENARIOS]


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


def _run_on_fake(scenario: Scenario, nodes: Any) -> dict[str, Any]:
    with FakeRayCluster(nodes) as cluster:
        outcome = scenario.run(Env(discover()))
        leaks = cluster.leaks()
    assert not leaks.placement_groups, f"scenario left groups behind: {leaks.describe()}"
    return outcome


def test_every_scenario_has_a_golden_outcome() -> None:
    assert sorted(_golden()) == sorted(IDS), "re-record differential_golden.json (see module doc)"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_fake_matches_real_ray_golden(scenario: Scenario) -> None:
    golden = _golden()
    if scenario.name not in golden:
        pytest.fail(f"no golden outcome for {scenario.name}; re-record (see module doc)")
    assert _run_on_fake(scenario, list(REFERENCE_NODES)) == golden[scenario.name]


@pytest.fixture(scope="module")
def real_outcomes(differential_ray_cluster: Any) -> dict[str, Any]:
    """Every scenario's outcome on the real cluster (run once, in table order)."""
    import ray

    env = Env(discover(), ready_s=30.0, pending_s=1.0)
    outcomes: dict[str, Any] = {}
    for scenario in SCENARIOS:
        wait_until_idle()
        try:
            outcomes[scenario.name] = scenario.run(env)
        except Exception as exc:  # a crash is an outcome the fake must not hide
            outcomes[scenario.name] = {"crashed": f"{type(exc).__name__}: {exc}"}
    wait_until_idle()
    reference = [n for n in ray.nodes() if n["Alive"]]
    if os.environ.get("RAYCALLBACKS_RECORD_GOLDEN"):
        GOLDEN.write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    outcomes["__nodes__"] = reference
    return outcomes


@pytest.mark.live
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_fake_matches_live_ray(scenario: Scenario, real_outcomes: dict[str, Any]) -> None:
    real = real_outcomes[scenario.name]
    fake = _run_on_fake(scenario, mirror_nodes(real_outcomes["__nodes__"]))
    assert fake == real


@pytest.mark.live
def test_live_cluster_is_still_usable_after_the_fake(real_outcomes: dict[str, Any]) -> None:
    """The fake shadows a connected real cluster only while active, then gives it back."""
    import ray

    real_get = ray.get
    with FakeRayCluster() as cluster:
        assert ray.get is not real_get
        assert len(ray.nodes()) == len(cluster.nodes)  # the fake's nodes, not the real ones
    assert ray.get is real_get
    assert ray.is_initialized()
    assert ray.get(ray.put(7), timeout=30) == 7
    real_nodes = {n["NodeID"] for n in ray.nodes()}
    assert real_nodes == {n["NodeID"] for n in real_outcomes["__nodes__"]}
