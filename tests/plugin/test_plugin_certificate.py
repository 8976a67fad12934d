"""The certificate (docs/design.md §The certificate) and waivers: content, atomic writing,
waived and stale."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conformance import CALLBACK, CATALOGUE_VERSION, checks_for
from pytest_raycallbacks.report.certificate import FORMAT, write_atomically

FAKE = ("--raycallbacks-cluster", "fake")
REPORT = ("--raycallbacks-report", "out/cert.json")
WAIVER = "merge.reaches-output=renamed in release 2, ticket ML-42"


def certify(project: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    project.mkdir("out")
    result = project.runpytest_inprocess(*FAKE, *REPORT, *args)
    return result, json.loads((project.path / "out" / "cert.json").read_text())


def test_the_certificate_of_a_certified_callback(project: pytest.Pytester) -> None:
    result, cert = certify(project, "--raycallbacks-conformance", "mycb.callback")
    assert result.ret == 0
    assert cert["format"] == FORMAT
    assert cert["kit"] == {
        "name": "pytest-raycallbacks",
        "version": "0.1.0",
        "catalogue_version": CATALOGUE_VERSION,
    }
    assert set(cert["environment"]) >= {"python", "ray", "pydantic", "pytest", "platform"}
    assert cert["run"]["exit_status"] == 0
    assert cert["run"]["clusters_requested"] == ["fake"]
    (callback,) = cert["callbacks"]
    assert callback["spec"] == "mycb.callback"
    assert callback["module"] == "mycb"
    assert Path(callback["file"]) == project.path / "mycb.py"
    assert callback["kind"] == "function"
    assert callback["style"] == "callback"
    assert callback["verdict"] == "certified"
    assert [c["name"] for c in callback["clusters"]] == ["fake"]
    expected = [(c.id, w) for c in checks_for(CALLBACK) for w in c.clusters_for(("fake",))]
    assert callback["applicable_checks"] == [c for c, _ in expected]
    assert [(c["id"], c["cluster"]) for c in callback["checks"]] == expected
    assert {c["outcome"] for c in callback["checks"]} == {"passed"}
    assert f"certificate: {project.path / 'out' / 'cert.json'}" in result.stdout.str()


def test_the_sha256_is_that_of_the_module_file(project: pytest.Pytester) -> None:
    import hashlib

    _, cert = certify(project, "--raycallbacks-conformance", "mycb.callback", "-k", "importable")
    digest = hashlib.sha256((project.path / "mycb.py").read_bytes()).hexdigest()
    assert cert["callbacks"][0]["sha256"] == digest


def test_a_failed_run_still_writes_the_certificate_with_the_failure(
    project: pytest.Pytester,
) -> None:
    result, cert = certify(project, "--raycallbacks-conformance", "badcb.callback")
    assert result.ret == 1
    assert cert["run"]["exit_status"] == 1
    callback = cert["callbacks"][0]
    assert callback["verdict"] == "rejected"
    (failed,) = [c for c in callback["checks"] if c["outcome"] == "failed"]
    assert failed["id"] == "merge.reaches-output"
    assert set(failed["failure"]) == {"expected", "happened", "fix"}
    assert "extra_init_kwarg" in failed["failure"]["happened"]
    assert not [p for p in (project.path / "out").iterdir() if p.name != "cert.json"]


def test_a_waived_failure_certifies_and_is_recorded(project: pytest.Pytester) -> None:
    result, cert = certify(
        project, "--raycallbacks-conformance", "badcb.callback", "--raycallbacks-waive", WAIVER
    )
    assert result.ret == 0
    result.assert_outcomes(passed=len(cert["callbacks"][0]["checks"]) - 1, xfailed=1)
    callback = cert["callbacks"][0]
    assert callback["verdict"] == "certified"
    (waived,) = [c for c in callback["checks"] if c["outcome"] == "waived"]
    assert waived["id"] == "merge.reaches-output"
    assert waived["waiver"] == "renamed in release 2, ticket ML-42"
    assert "extra_init_kwarg" in waived["failure"]["happened"]
    assert cert["run"]["waivers"] == [
        {
            "check": "merge.reaches-output",
            "spec": None,
            "reason": "renamed in release 2, ticket ML-42",
        }
    ]
    assert (
        "waived merge.reaches-output [fake]: renamed in release 2, ticket ML-42"
        in result.stdout.str()
    )


def test_a_waiver_for_one_spec_does_not_waive_the_others(project: pytest.Pytester) -> None:
    waiver = "merge.reaches-output@mycb.callback=not this one"
    result, cert = certify(
        project, "--raycallbacks-conformance", "badcb.callback", "--raycallbacks-waive", waiver
    )
    assert result.ret == 1
    assert cert["callbacks"][0]["verdict"] == "rejected"


def test_a_waived_check_that_passes_is_reported_as_stale(project: pytest.Pytester) -> None:
    result, cert = certify(
        project, "--raycallbacks-conformance", "mycb.callback", "--raycallbacks-waive", WAIVER
    )
    assert result.ret == 0
    checks = {c["id"]: c for c in cert["callbacks"][0]["checks"]}
    assert checks["merge.reaches-output"]["outcome"] == "passed"
    assert checks["merge.reaches-output"]["stale_waiver"] is True
    text = result.stdout.str()
    assert "stale waiver: merge.reaches-output [fake] passes now" in text
    assert "StaleWaiverWarning" in text


@pytest.mark.parametrize(
    "warning",
    [
        "pytest_raycallbacks.kit.StaleWaiverWarning",
        "pytest_raycallbacks.checkrun.StaleWaiverWarning",  # the path the docs gave first
    ],
)
def test_stale_waivers_can_be_made_fatal_with_w_error(
    project: pytest.Pytester, warning: str
) -> None:
    project.mkdir("out")
    result = project.runpytest_inprocess(
        *FAKE,
        "--raycallbacks-conformance",
        "mycb.callback",
        "--raycallbacks-waive",
        WAIVER,
        "-W",
        f"error::{warning}",
    )
    assert result.ret == 1


def test_write_atomically_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "cert.json"
    target.write_text('{"old": true}')
    write_atomically(target, {"new": True})
    assert json.loads(target.read_text()) == {"new": True}
    assert os.listdir(tmp_path) == ["cert.json"]


def test_write_atomically_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "cert.json"
    target.write_text('{"old": true}')
    with pytest.raises(TypeError):
        write_atomically(target, {"bad": object()} | {1.5j: 1})  # type: ignore[dict-item]
    assert json.loads(target.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["cert.json"]
