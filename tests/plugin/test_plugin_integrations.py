"""The kit with pytest's and its plugins' machinery: --junitxml, pytest-xdist,
pytest-asyncio in strict and auto mode, -x."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conformance import CALLBACK, checks_for

FAKE = ("--raycallbacks-cluster", "fake")
CERTIFY = ("--raycallbacks-conformance", "mycb.callback", *FAKE)
N_FAKE = sum(1 for c in checks_for(CALLBACK) if c.clusters_for(("fake",)))
ASYNC_TESTS = """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_marked():
    await asyncio.sleep(0)

async def test_unmarked():
    await asyncio.sleep(0)
"""


def test_junitxml_has_one_testcase_per_check_with_its_properties(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(
        *CERTIFY, "--raycallbacks-conformance", "badcb.callback", "--junitxml=junit.xml"
    )
    assert result.ret == 1
    cases = ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    by_name = {c.get("name"): c for c in cases}
    assert len(by_name) == 2 * N_FAKE
    case = by_name["merge.reaches-output[badcb.callback-fake]"]
    assert case.get("classname") == "raycallbacks"
    failure = case.find("failure")
    assert failure is not None and "extra_init_kwarg" in (failure.text or "")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {
        "raycallbacks_check": "merge.reaches-output",
        "raycallbacks_callback": "badcb.callback",
        "raycallbacks_cluster": "fake",
    }


def test_xdist_runs_the_checks_on_workers_and_certifies_on_the_controller(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_subprocess(
        *CERTIFY,
        "--raycallbacks-conformance",
        "badcb.callback",
        "-n",
        "2",
        "--raycallbacks-report",
        "cert.json",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=2 * N_FAKE - 1, failed=1)
    cert = json.loads((project.path / "cert.json").read_text())
    verdicts = {c["spec"]: (c["verdict"], c["counts"]) for c in cert["callbacks"]}
    assert verdicts["mycb.callback"][0] == "certified"
    assert verdicts["mycb.callback"][1]["passed"] == N_FAKE
    assert verdicts["badcb.callback"][0] == "rejected"
    assert result.stdout.str().count("=== raycallbacks conformance ===") == 1


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_modes_leave_user_async_tests_and_the_kit_working(
    project: pytest.Pytester, mode: str
) -> None:
    project.makepyfile(test_async=ASYNC_TESTS)
    result = project.runpytest_subprocess(
        *CERTIFY, "-o", f"asyncio_mode={mode}", "-p", "no:randomly"
    )
    if mode == "auto":
        result.assert_outcomes(passed=N_FAKE + 2)
        assert result.ret == 0
    else:  # strict: the unmarked coroutine is not run by pytest-asyncio (pytest fails it)
        outcomes = result.parseoutcomes()
        assert outcomes["passed"] == N_FAKE + 1
    assert "mycb.callback: CERTIFIED" in result.stdout.str()


def test_stopping_early_leaves_the_verdict_incomplete(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(
        "--raycallbacks-conformance",
        "badcb.callback",
        *FAKE,
        "-x",
        "--raycallbacks-report",
        "cert.json",
    )
    assert result.ret == 1
    cert = json.loads((project.path / "cert.json").read_text())
    counts = cert["callbacks"][0]["counts"]
    assert cert["callbacks"][0]["verdict"] == "rejected"
    assert counts["not run"] > 0


def test_deselecting_checks_makes_the_verdict_incomplete(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(
        *CERTIFY, "-k", "loading", "--raycallbacks-report", "cert.json"
    )
    assert result.ret == 1, "exit 0 only when every requested callback is certified"
    cert = json.loads((project.path / "cert.json").read_text())
    assert cert["callbacks"][0]["verdict"] == "incomplete"
    assert cert["run"]["exit_status"] == 1
    out = result.stdout.str()
    assert "check(s) did not run" in out
    assert "exit status 1: not certified (incomplete)" in out
