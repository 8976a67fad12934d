"""Callbacks in a chain (issue 6 part 2): ``--raycallbacks-chain`` reports collisions and
order dependence, in the summary, as a test item and in the certificate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance import CALLBACK, checks_for
from conformance.chain import ALL_ORDERS_UP_TO, SAMPLED_ORDERS, orders

FAKE = ("--raycallbacks-cluster", "fake")
REPORT = ("--raycallbacks-report", "cert.json")

CHAIN_CALLBACKS = """
def eager(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"enforce_eager": True}}
    return None


def long_context(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"max_model_len": 4096}}
    return None


def merge_eager(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {**data.get("extra_init_kwargs", {}), "enforce_eager": True}}
    return None


def merge_long(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {**data.get("extra_init_kwargs", {}), "max_model_len": 4096}}
    return None


def first_wins_a(phase, config, data):
    if phase == "pre_initialization" and "owner" not in data:
        return {"owner": "a"}
    return None


def first_wins_b(phase, config, data):
    if phase == "pre_initialization" and "owner" not in data:
        return {"owner": "b"}
    return None


def early_tag(phase, config, data):
    if phase == "pre_initialization":
        return {"team.tag": "early"}
    return None


def late_tag(phase, config, data):
    if phase == "post_initialization":
        return {"team.tag": "late"}
    return None


def boom(phase, config, data):
    if phase == "pre_download":
        raise ValueError("no quota left")
    return None
"""


@pytest.fixture
def chain_project(project: pytest.Pytester) -> pytest.Pytester:
    project.makepyfile(teamcbs=CHAIN_CALLBACKS)
    return project


def run_chain(
    project: pytest.Pytester, *names: str, only_chain: bool = True
) -> tuple[pytest.RunResult, dict[str, Any]]:
    specs = [arg for name in names for arg in ("--raycallbacks-conformance", f"teamcbs.{name}")]
    select = ("-k", "chain") if only_chain else ()
    result = project.runpytest_inprocess(*FAKE, *REPORT, *specs, "--raycallbacks-chain", *select)
    return result, json.loads((project.path / "cert.json").read_text())


def test_two_callbacks_replacing_extra_init_kwargs_reject_the_chain(
    chain_project: pytest.Pytester,
) -> None:
    result, cert = run_chain(chain_project, "eager", "long_context", only_chain=False)
    assert result.ret == 1
    # each callback alone is fine; the chain is not
    assert [c["verdict"] for c in cert["callbacks"]] == ["certified", "certified"]
    chain = cert["chain"]
    assert chain["specs"] == ["teamcbs.eager", "teamcbs.long_context"]
    assert chain["verdict"] == "rejected"
    (collision,) = chain["collisions"]
    assert collision["key"] == "extra_init_kwargs"
    assert collision["kind"] == "replaced" and collision["reserved"] is True
    assert collision["first"] == {
        "callback": "teamcbs.eager",
        "phase": "pre_engine_init",
        "value": "{'enforce_eager': True}",
    }
    assert collision["second"]["callback"] == "teamcbs.long_context"
    assert collision["second"]["value"] == "{'max_model_len': 4096}"
    assert collision["lost"] == ["enforce_eager"]
    assert chain["order_dependent"] is True
    assert chain["orders_tried"] == [
        ["teamcbs.eager", "teamcbs.long_context"],
        ["teamcbs.long_context", "teamcbs.eager"],
    ]
    assert chain["differences"][0]["field"] == "extra_init_kwargs"
    assert any('{**data.get("extra_init_kwargs", {}), ...}' in fix for fix in chain["fixes"])
    result.stdout.fnmatch_lines(
        [
            "FAILED raycallbacks::chain[[]teamcbs.eager+teamcbs.long_context-fake[]]*",
        ]
    )
    out = result.stdout.str().split("raycallbacks conformance")[1]
    assert "chain teamcbs.eager -> teamcbs.long_context: REJECTED" in out
    assert (
        "    collision: teamcbs.long_context replaced whole 'extra_init_kwargs' in "
        "'pre_engine_init': teamcbs.eager had set {'enforce_eager': True} in "
        "'pre_engine_init', now {'max_model_len': 4096} (lost: enforce_eager)" in out
    )
    assert "    fix: merge 'extra_init_kwargs' instead of replacing it" in out


def test_callbacks_that_merge_make_a_certified_chain(chain_project: pytest.Pytester) -> None:
    result, cert = run_chain(chain_project, "merge_eager", "merge_long", only_chain=False)
    assert result.ret == 0, result.stdout.str()
    chain = cert["chain"]
    assert chain["verdict"] == "certified"
    assert chain["collisions"] == [] and chain["differences"] == []
    assert chain["order_dependent"] is False
    assert cert["run"]["exit_status"] == 0
    assert "chain teamcbs.merge_eager -> teamcbs.merge_long: CERTIFIED" in result.stdout.str()


def test_an_order_dependent_chain_without_collisions_is_rejected(
    chain_project: pytest.Pytester,
) -> None:
    result, cert = run_chain(chain_project, "first_wins_a", "first_wins_b")
    chain = cert["chain"]
    assert chain["collisions"] == []
    assert chain["order_dependent"] is True and chain["verdict"] == "rejected"
    (difference,) = chain["differences"]
    assert difference == {
        "order": ["teamcbs.first_wins_b", "teamcbs.first_wins_a"],
        "field": "data['owner']",
        "given": "'a'",
        "this_order": "'b'",
    }
    assert (
        "order teamcbs.first_wins_b -> teamcbs.first_wins_a: data['owner'] is 'b' "
        "(given order: 'a')" in result.stdout.str()
    )


def test_an_overwrite_of_an_own_key_is_reported_but_rejects_only_if_the_order_matters(
    chain_project: pytest.Pytester,
) -> None:
    _, cert = run_chain(chain_project, "early_tag", "late_tag")
    chain = cert["chain"]
    (collision,) = chain["collisions"]
    assert (collision["key"], collision["kind"], collision["reserved"]) == (
        "team.tag",
        "overwritten",
        False,
    )
    # late_tag writes last in every order: the outcome does not depend on it
    assert chain["order_dependent"] is False and chain["verdict"] == "certified"


def test_a_chain_that_fails_in_the_given_order_is_rejected(
    chain_project: pytest.Pytester,
) -> None:
    result, cert = run_chain(chain_project, "merge_eager", "boom")
    chain = cert["chain"]
    assert chain["verdict"] == "rejected"
    assert chain["given_order_error"].startswith("ValueError: no quota left")
    assert chain["order_dependent"] is False  # it fails the same way in every order
    assert "    the given order fails: ValueError: no quota left" in result.stdout.str()


def test_three_callbacks_try_every_order_and_k_chain_selects_only_the_chain(
    chain_project: pytest.Pytester,
) -> None:
    result, cert = run_chain(chain_project, "merge_eager", "merge_long", "early_tag")
    assert len(cert["chain"]["orders_tried"]) == 6
    assert cert["chain"]["verdict"] == "certified"
    per_callback = [c for c in checks_for(CALLBACK) if c.clusters_for(("fake",))]
    result.assert_outcomes(passed=1, deselected=3 * len(per_callback))
    # the individual callbacks were not certified: the run is not a pass
    assert result.ret == 1


def test_the_chain_flag_with_one_spec_is_a_usage_error(chain_project: pytest.Pytester) -> None:
    result = chain_project.runpytest_inprocess(
        *FAKE, "--raycallbacks-conformance", "teamcbs.eager", "--raycallbacks-chain"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "give two or more --raycallbacks-conformance specs" in result.stderr.str()


def test_the_ini_key_turns_the_chain_on(chain_project: pytest.Pytester) -> None:
    chain_project.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nraycallbacks_chain = true\n"
    )
    result = chain_project.runpytest_inprocess(
        *FAKE,
        "--raycallbacks-conformance",
        "teamcbs.merge_eager",
        "--raycallbacks-conformance",
        "teamcbs.merge_long",
        "-k",
        "chain",
        "--collect-only",
        "-q",
    )
    result.stdout.fnmatch_lines(["raycallbacks::chain[[]teamcbs.merge_eager+*-fake[]]"])


def test_orders_are_all_permutations_up_to_four_then_a_fixed_sample() -> None:
    assert len(orders(["a", "b", "c", "d"])) == 23
    labels = [f"cb{i}" for i in range(ALL_ORDERS_UP_TO + 2)]
    sample = orders(labels)
    assert len(sample) == SAMPLED_ORDERS
    assert sample[0] == tuple(reversed(range(len(labels))))
    assert tuple(range(len(labels))) not in sample
    assert len(set(sample)) == len(sample)
    assert sample == orders(labels)  # the same orders on every run


def test_under_xdist_the_controller_reports_the_chain_and_the_coverage(
    chain_project: pytest.Pytester,
) -> None:
    result = chain_project.runpytest_subprocess(
        *FAKE,
        *REPORT,
        "-n",
        "2",
        "--raycallbacks-conformance",
        "teamcbs.merge_eager",
        "--raycallbacks-conformance",
        "teamcbs.merge_long",
        "--raycallbacks-chain",
        "-k",
        "chain or lifecycle",  # the chain and 2 x 2 lifecycle checks, spread over 2 workers
    )
    result.assert_outcomes(passed=5)  # (xdist does not count deselected items)
    assert result.ret == 1  # the callbacks themselves are incomplete (-k)
    cert = json.loads((chain_project.path / "cert.json").read_text())
    assert cert["chain"]["verdict"] == "certified"
    assert len(cert["chain"]["orders_tried"]) == 2
    coverage = [c["coverage"] for c in cert["callbacks"]]
    assert all(c is not None for c in coverage)
    assert all(c["percent"] == 100.0 for c in coverage if c["measured"])
    assert "chain teamcbs.merge_eager -> teamcbs.merge_long: CERTIFIED" in result.stdout.str()


def test_the_deploy_gate_refuses_a_certificate_whose_chain_is_rejected(
    chain_project: pytest.Pytester,
) -> None:
    from pytest_raycallbacks.verify import verify_certificate

    _, cert = run_chain(chain_project, "eager", "long_context")
    findings = verify_certificate(cert, import_paths=[str(chain_project.path)])
    chain_findings = [f for f in findings if str(f.spec).startswith("chain ")]
    assert [str(f) for f in chain_findings] == [
        "chain teamcbs.eager -> teamcbs.long_context: verdict was 'rejected', not 'certified' "
        "(see the certificate's chain: collisions, differences and fixes)"
    ]
