"""``--raycallbacks-conformance`` on Ray's ``CallbackBase`` subclasses (issues 6 and 17).

A user's project holds ``ray_callback_subjects.py`` (the sample subclasses of
``tests/ray_callback_base``); the kit detects the style, collects only the checks that apply
to it (the loading, process and error checks plus the ``callbackbase.*`` rules), runs them
by Ray's own code on the fake cluster (a replica start: Ray's ``get_or_create_callback``,
``run_callback``, ``initialize_node``), and names the rule each broken class breaks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import copy_into, run_kit

from conformance import CALLBACK, CALLBACKBASE, CATALOGUE, STYLES, Subject, checks_for
from conformance.catalogue import applies_to
from conformance.checks.callbackbase import RULES
from conformance.registry import check

SUBJECTS = Path(__file__).parents[1] / "ray_callback_base" / "ray_callback_subjects.py"
MODULE = "ray_callback_subjects"
GOOD = f"{MODULE}:GoodCallback"
FAKE = ("--raycallbacks-cluster", "fake")
REPORT = ("--raycallbacks-report", "cert.json")

#: Broken sample classes and the rules that must reject them: exactly these fail.
BROKEN: dict[str, set[str]] = {
    "WrongCtxType": {"callbackbase.ctx-types"},
    "BadRuntimeEnv": {"callbackbase.ctx-types"},
    "MisspeltHook": {"callbackbase.hooks"},
    "ReturnsCoroutine": {"callbackbase.run"},
    "RaisingHook": {"callbackbase.run"},
    "RaisesBaseException": {
        "callbackbase.errors",
        "callbackbase.run",
        "errors.only-exceptions",
    },
    "DifferentSignature": {"callbackbase.constructor", "callbackbase.run"},
    "Unpicklable": {"callbackbase.shippable", "callbackbase.run", "loading.shippable"},
    "DownloadHookChangesCtx": {"callbackbase.hooks"},
}
#: Forms Ray 2.60 runs fine: certified, with advice (issue 17: no rule contradicts Ray).
RAY_RUNS_THEM: dict[str, str] = {
    "SyncAwaitedHook": "on_before_node_init is a plain def",
    "AsyncDownloadHook": "is 'async def'",
    "OverridesDispatch": "overrides CallbackBase.run_callback",
}


@pytest.fixture
def cb_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project with the sample ``CallbackBase`` subclasses as a module."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    shutil.copy2(SUBJECTS, pytester.path / SUBJECTS.name)
    return pytester


def certify(project: pytest.Pytester, *specs: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    args = [arg for spec in specs for arg in ("--raycallbacks-conformance", spec)]
    result = project.runpytest_inprocess(*args, *FAKE, *REPORT)
    return result, json.loads((project.path / "cert.json").read_text())


def on_fake(style: str) -> list[str]:
    """The ids of the checks of ``style`` that a fake-cluster run collects."""
    return [c.id for c in checks_for(style) if c.clusters_for(("fake",))]


def entry(cert: dict[str, Any], spec: str) -> dict[str, Any]:
    return next(c for c in cert["callbacks"] if c["spec"] == spec)


# ---------------------------------------------------------------------- the catalogue


def test_each_check_applies_to_a_style_and_the_callbackbase_rules_to_subclasses_only() -> None:
    for c in CATALOGUE:
        assert c.styles and set(c.styles) <= set(STYLES), c.id
        assert (c.category == "callbackbase") == (c.styles == (CALLBACKBASE,)), c.id
    for_callbacks = {c.id for c in checks_for(CALLBACK)}
    for_subclasses = {c.id for c in checks_for(CALLBACKBASE)}
    assert {"loading.no-arg-class", "loading.signature", "phases.unknown-names"} <= (
        for_callbacks - for_subclasses
    )
    assert {r.id for r in RULES} == for_subclasses - for_callbacks
    assert {"loading.shippable", "process.environment", "errors.only-exceptions"} <= (
        for_callbacks & for_subclasses
    )
    # Ray's own code judges a subclass's lifecycle, merge and cluster behaviour: the
    # reference runner's checks of those apply to (phase, config, data) callbacks only.
    assert {"phases.lifecycle", "merge.ownership", "cluster.initialize-node"} <= (
        for_callbacks - for_subclasses
    )
    assert applies_to(CATALOGUE[0]) == "both"


def test_a_check_with_an_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="styles"):
        check("loading.x-y", rule="r.", why="w", styles=("class",))


def test_the_subject_knows_its_style(cb_project: pytest.Pytester) -> None:
    cb_project.syspathinsert()
    cb_project.makepyfile(plain="def callback(phase, config, data):\n    return None\n")
    good = Subject(GOOD)
    assert (good.style, good.kind) == (CALLBACKBASE, "ray CallbackBase subclass")
    assert type(good.load()).__name__ == "CallbackBaseAdapter"
    assert good.fresh() is not good.load()
    assert Subject("plain.callback").style == CALLBACK
    assert Subject("nowhere.callback").style == CALLBACK  # loading.importable says why


def test_list_checks_says_which_style_each_check_applies_to(cb_project: pytest.Pytester) -> None:
    lines = cb_project.runpytest_inprocess("--raycallbacks-list-checks").stdout.lines
    by_id = {line.split()[0]: line for line in lines if line.split()}
    assert " both " in by_id["process.environment"]
    assert " callback " in by_id["phases.lifecycle"]
    assert " callback " in by_id["loading.no-arg-class"]
    assert " CallbackBase " in by_id["callbackbase.hooks"]
    assert "for Ray CallbackBase subclasses" in lines[0]


# ---------------------------------------------------------------------- certifying


def test_a_good_subclass_is_certified_on_the_fake_cluster(cb_project: pytest.Pytester) -> None:
    result, cert = certify(cb_project, GOOD)
    assert result.ret == 0, result.stdout.str()[-3000:]
    callback = entry(cert, GOOD)
    assert callback["verdict"] == "certified"
    assert callback["kind"] == "ray CallbackBase subclass"
    assert callback["style"] == CALLBACKBASE
    expected = on_fake(CALLBACKBASE)
    assert callback["applicable_checks"] == expected
    assert [c["id"] for c in callback["checks"]] == expected
    assert {c["outcome"] for c in callback["checks"]} == {"passed"}
    out = result.stdout.str()
    assert "no-arg-class" not in out and "unknown-names" not in out
    result.stdout.fnmatch_lines(
        [
            f"{GOOD}: CERTIFIED",
            f"*ray CallbackBase subclass: {len(expected)} checks apply (callbackbase.* included)",
        ]
    )


def test_broken_subclasses_are_rejected_by_the_rule_they_break(
    cb_project: pytest.Pytester,
) -> None:
    specs = [f"{MODULE}:{name}" for name in BROKEN]
    result, cert = certify(cb_project, *specs)
    assert result.ret == 1
    wrong = {}
    for name, rules in BROKEN.items():
        callback = entry(cert, f"{MODULE}:{name}")
        failed = {c["id"] for c in callback["checks"] if c["outcome"] == "failed"}
        if callback["verdict"] != "rejected" or failed != rules:
            wrong[name] = sorted(failed)
    assert not wrong, wrong


def test_forms_ray_runs_are_certified_with_advice(cb_project: pytest.Pytester) -> None:
    specs = [f"{MODULE}:{name}" for name in RAY_RUNS_THEM]
    result, cert = certify(cb_project, *specs)
    assert result.ret == 0, result.stdout.str()[-3000:]
    for name, advice in RAY_RUNS_THEM.items():
        callback = entry(cert, f"{MODULE}:{name}")
        assert callback["verdict"] == "certified", name
        hooks = next(c for c in callback["checks"] if c["id"] == "callbackbase.hooks")
        assert advice in (hooks["advice"] or ""), (name, hooks)
    result.stdout.fnmatch_lines([f"{MODULE}:SyncAwaitedHook: CERTIFIED", "*advice*plain def*"])


def test_the_failure_says_what_was_expected_what_happened_and_the_fix(
    cb_project: pytest.Pytester,
) -> None:
    result, cert = certify(cb_project, f"{MODULE}:RaisingHook", f"{MODULE}:WrongCtxType")
    checks = {c["id"]: c for c in entry(cert, f"{MODULE}:RaisingHook")["checks"]}
    failure = checks["callbackbase.run"]["failure"]
    assert (
        "the hook on_before_node_init raised Exception: Error running callback method"
        in (failure["happened"])
    )
    assert "caused by ValueError: boom" in failure["happened"]
    assert "data" not in failure["fix"] and "on_before_node_init" in failure["fix"]
    checks = {c["id"]: c for c in entry(cert, f"{MODULE}:WrongCtxType")["checks"]}
    happened = checks["callbackbase.ctx-types"]["failure"]["happened"]
    assert "ctx.worker_node_download_model = str 'TOKENIZER_ONLY'" in happened
    result.stdout.fnmatch_lines(
        [
            f"{MODULE}:RaisingHook: REJECTED",
            "*FAILED callbackbase.run [[]fake[]]: Ray's engine start with the callback completes*",
        ]
    )


def test_a_subclass_and_a_callback_certified_together_get_their_own_checks(
    cb_project: pytest.Pytester,
) -> None:
    cb_project.makepyfile(plain="def callback(phase, config, data):\n    return None\n")
    result, cert = certify(cb_project, GOOD, "plain.callback")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert entry(cert, "plain.callback")["applicable_checks"] == on_fake(CALLBACK)
    assert entry(cert, GOOD)["style"] == CALLBACKBASE


@pytest.mark.live
def test_a_good_subclass_is_certified_on_fake_and_live(tmp_path: Path) -> None:
    copy_into(tmp_path, SUBJECTS)
    run = run_kit(
        tmp_path,
        [GOOD],
        ["--raycallbacks-cluster", "both", "--raycallbacks-gpus", "simulate"],
    )
    callback = run.callback(GOOD)
    assert callback["verdict"] == "certified", run.failed(GOOD)
    assert {c["name"] for c in callback["clusters"]} == {"fake", "live"}
    live = {c["id"] for c in callback["checks"] if c["cluster"] == "live"}
    assert live == {"loading.shippable", "callbackbase.run"}
