"""How the suite is collected and selected: with or without the user's own tests, test ids
that name check, callback and cluster, -k/-m, -p no:raycallbacks, --fixtures."""

from __future__ import annotations

import pytest

from conformance import CALLBACK, CATALOGUE, checks_for

FAKE = ("--raycallbacks-cluster", "fake")
CERTIFY = ("--raycallbacks-conformance", "mycb.callback", *FAKE)
#: How many items one ``(phase, config, data)`` callback gets on the fake cluster.
PER_CALLBACK = len([c for c in checks_for(CALLBACK) if c.clusters_for(("fake",))])


def assert_in_order(text: str, *fragments: str) -> None:
    """Each fragment occurs in ``text``, after the previous one."""
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        assert found >= 0, f"{fragment!r} not found after position {position} in:\n{text}"
        position = found + len(fragment)


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and not line.startswith(" ")]


def test_a_folder_without_tests_collects_the_suite_and_certifies(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(*CERTIFY)
    assert result.ret == 0
    local_and_fake = [c for c in checks_for(CALLBACK) if c.clusters_for(("fake",))]
    result.assert_outcomes(passed=len(local_and_fake))
    result.stdout.fnmatch_lines(
        [
            "*raycallbacks conformance*",
            "mycb.callback: CERTIFIED",
            f"    {len(local_and_fake)} passed, 0 failed, 0 skipped, 0 waived, 0 not run; "
            "clusters: fake*",
        ]
    )


def test_ids_name_check_callback_and_cluster(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(*CERTIFY, "--collect-only", "-q")
    ids = collected(result)
    assert "raycallbacks::loading.importable[mycb.callback-local]" in ids
    assert "raycallbacks::merge.ownership[mycb.callback-fake]" in ids
    assert "raycallbacks::cluster.initialize-node[mycb.callback-fake]" in ids
    assert len(ids) == len(set(ids))


def test_k_merge_and_fake_selects_the_merge_checks_on_the_fake_cluster(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_inprocess(*CERTIFY, "--collect-only", "-q", "-k", "merge and fake")
    ids = collected(result)
    merge = [c.id for c in CATALOGUE if c.category == "merge"]
    assert ids == [f"raycallbacks::{m}[mycb.callback-fake]" for m in merge]


def test_m_selects_the_kit_or_the_users_tests(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    only_kit = collected(project.runpytest_inprocess(*CERTIFY, "--co", "-q", "-m", "raycallbacks"))
    assert only_kit and all(i.startswith("raycallbacks::") for i in only_kit)
    not_kit = collected(
        project.runpytest_inprocess(*CERTIFY, "--co", "-q", "-m", "not raycallbacks")
    )
    assert not_kit == ["test_mine.py::test_mine"]


def test_runs_alongside_the_users_own_tests(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_mine="""
        def test_uses_the_runner(callback_runner):
            runner = callback_runner("mycb.callback")
            data = runner.run_sync("pre_engine_init", None)
            assert data["extra_init_kwargs"] == {"max_model_len": 4096}
        """
    )
    result = project.runpytest_inprocess(*CERTIFY)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] > 2
    assert "test_mine.py ." in result.stdout.str()
    assert "mycb.callback: CERTIFIED" in result.stdout.str()
    assert result.ret == 0


def test_several_callbacks_are_certified_side_by_side(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(*CERTIFY, "--raycallbacks-conformance", "badcb.callback")
    assert result.ret == 1
    assert_in_order(
        result.stdout.str(),
        "mycb.callback: CERTIFIED",
        "badcb.callback: REJECTED",
        f"{PER_CALLBACK - 1} passed, 1 failed",
        "    FAILED merge.reaches-output [fake]: What it sets takes effect",
        "        in phase 'pre_initialization' it set data['extra_init_kwarg']",
    )


def test_a_spec_that_does_not_import_is_a_failed_check_not_a_crash(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_inprocess(
        "--raycallbacks-conformance", "nosuchmodule.callback", *FAKE
    )
    assert result.ret == 1
    assert "INTERNALERROR" not in result.stdout.str()
    assert_in_order(
        result.stdout.str(),
        "nosuchmodule.callback: REJECTED",
        f"0 passed, 1 failed, {PER_CALLBACK - 1} skipped",
        "    FAILED loading.importable [local]:",
        "no module found",
        f"    skipped {PER_CALLBACK - 1} checks: ",
    )


def test_a_malformed_spec_is_a_failed_loading_check(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--raycallbacks-conformance", "my-module.cb", *FAKE)
    assert result.ret == 1
    assert_in_order(
        result.stdout.str(), "FAILED loading.importable [local]", "not a valid import path"
    )


def test_disabled_plugin_leaves_the_users_tests_alone(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:raycallbacks")
    result.assert_outcomes(passed=1)
    result = project.runpytest_subprocess("-p", "no:raycallbacks", "--fixtures")
    assert "callback_runner" not in result.stdout.str()
    result = project.runpytest_subprocess("-p", "no:raycallbacks", *CERTIFY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_every_fixture_is_listed_with_its_docstring(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--fixtures")
    text = result.stdout.str()
    for fixture, words in {
        "callback_runner": "Build a reference",
        "gpu_ray_cluster": "live Ray cluster",
        "raycallbacks_check": "One conformance check",
    }.items():
        assert f"{fixture} " in text or f"{fixture}\n" in text
        assert words in text
    assert (
        "no docstring available" not in text.split("fixtures defined from pytest_raycallbacks")[-1]
    )
