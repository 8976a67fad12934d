"""The cluster checks on a live Ray cluster with simulated GPUs (CI runs these).

One kit process certifies a callback that behaves the same everywhere (Example 4, which
builds a real placement group and runtime env) and one that depends on state the test
session's ``conftest.py`` set up. On the live cluster the callbacks run inside a Ray actor,
loaded from their import paths; the second is rejected by ``cluster.in-worker``.
"""

from __future__ import annotations

import pytest
from kit_helpers import EXAMPLES, HERE, KitRun, copy_into, run_kit

pytestmark = pytest.mark.live

GOOD = "examples.full_initialization.custom_full_initialization"
SESSION_DEPENDENT = "registry_dependent.callback"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    project = tmp_path_factory.mktemp("live-project")
    live = HERE / "live_callbacks"
    copy_into(project, EXAMPLES, live / "team_registry.py", live / "registry_dependent.py")
    (project / "conftest.py").write_text((live / "user_conftest.py").read_text())
    return run_kit(
        project,
        [GOOD, SESSION_DEPENDENT],
        ["--raycallbacks-cluster", "both", "--raycallbacks-gpus", "simulate"],
    )


def test_a_portable_callback_is_certified_on_fake_and_live(run: KitRun) -> None:
    callback = run.callback(GOOD)
    assert callback["verdict"] == "certified", run.failed(GOOD)
    clusters = {c["name"]: c for c in callback["clusters"]}
    assert set(clusters) == {"fake", "live"}
    assert clusters["live"]["physical"] is False
    assert clusters["live"]["gpus"] >= 2
    live_checks = {c["id"] for c in callback["checks"] if c["cluster"] == "live"}
    assert live_checks == {
        "loading.shippable",
        "cluster.initialize-node",
        "cluster.placement-group",
        "cluster.final-group-has-model",
        "cluster.runtime-env",
        "cluster.in-worker",
    }
    assert "live (simulated GPUs" in run.output


def test_a_callback_that_depends_on_the_test_session_is_rejected_in_the_worker(
    run: KitRun,
) -> None:
    failed = run.failed(SESSION_DEPENDENT)
    assert set(failed) == {"cluster.in-worker"}
    happened = failed["cluster.in-worker"]["failure"]["happened"]
    assert (
        "in phase 'pre_engine_init' it set [] in the worker but ['extra_init_kwargs']" in happened
    )
