"""The kit on the ``CallbackBase`` subclasses Ray users have: ``callback_kwargs`` and a
local S3 (``--raycallbacks-callback-kwargs``, ``--raycallbacks-s3``), on the fake cluster.

Ray 2.60 ships one subclass, ``CloudDownloader``, which downloads ``s3://`` prefixes before
the model download; Ray's own test callback asserts a ``callback_kwargs`` key in its
constructor. Both are certified with their kwargs and rejected without them, naming the
option; a bucket that does not exist is rejected, naming the bucket. The kit runs in this
process (pytester), under the loopback-only network guard.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import HERE

from pytest_raycallbacks.cli import main as cli_main
from tests.object_store.network_guard import loopback_only

CLOUD = "ray.llm._internal.common.callbacks.cloud_downloader:CloudDownloader"
OTHER = "other_downloader:CloudDownloader"
TESTING = "ray_test_like:TestingCallback"
TESTING_KWARGS = '{"kwargs_test_key": "kwargs_test_value"}'
OPTION = "--raycallbacks-callback-kwargs"
FILES = {"extra/config.json": b'{"a": 1}', "extra/sub/tokenizer.bin": b"\x00\x01"}


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    with loopback_only():
        yield


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's folder: the sample classes, and ``models/`` to serve as a bucket."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for source in (HERE / "kwargs_callbacks").glob("*.py"):
        shutil.copy2(source, pytester.path / source.name)
    for key, body in FILES.items():
        path = pytester.path / "models" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return pytester


def certify(project: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = project.runpytest_inprocess(
        *args, "--raycallbacks-cluster", "fake", "--raycallbacks-report", "cert.json"
    )
    return result, json.loads((project.path / "cert.json").read_text())


def entry(cert: dict[str, Any], spec: str) -> dict[str, Any]:
    return next(c for c in cert["callbacks"] if c["spec"] == spec)


def failed(cert: dict[str, Any], spec: str) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in entry(cert, spec)["checks"] if c["outcome"] == "failed"}


def environ() -> dict[str, str]:
    """``os.environ`` but pytest's own ``PYTEST_*`` variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def downloader_kwargs(spec: str, uri: str, dest: Path) -> str:
    return f"{spec}={json.dumps({'paths': [[uri, str(dest)]]})}"


def test_clouddownloader_is_certified_and_its_files_arrive(project: pytest.Pytester) -> None:
    dest = project.path / "dest"
    before = environ()
    result, cert = certify(
        project,
        "--raycallbacks-conformance",
        CLOUD,
        OPTION,
        downloader_kwargs(CLOUD, "s3://models/extra", dest),
        "--raycallbacks-s3",
        "models=models",
    )
    callback = entry(cert, CLOUD)
    assert callback["verdict"] == "certified", failed(cert, CLOUD)
    assert result.ret == 0
    assert files_under(dest) == {"config.json": b'{"a": 1}', "sub/tokenizer.bin": b"\x00\x01"}
    assert callback["callback_kwargs"] == {"paths": [["s3://models/extra", str(dest)]]}
    assert cert["run"]["s3_buckets"] == {"models": str(project.path / "models")}
    constructor = next(c for c in callback["checks"] if c["id"] == "callbackbase.constructor")
    assert constructor["detail"] == "built with callback_kwargs ['paths']"
    assert environ() == before  # the local S3's environment is gone again

    # The deploy gate: the same kwargs hold, other or missing kwargs do not.
    cert_path = str(project.path / "cert.json")
    same = downloader_kwargs(CLOUD, "s3://models/extra", dest)
    (project.path / "deploy.yaml").write_text(f"paths:\n  - [s3://models/extra, {dest}]\n")
    verify = ["verify", cert_path, "--path", str(project.path)]
    assert cli_main([*verify, "--callback-kwargs", same]) == 0
    assert cli_main([*verify, "--callback-kwargs", f"{CLOUD}=@deploy.yaml"]) == 0
    other = downloader_kwargs(CLOUD, "s3://models/other", dest)
    assert cli_main([*verify, "--callback-kwargs", other]) == 1
    assert cli_main(verify) == 1  # deployed with none: not what was certified
    assert cli_main([*verify, "--callback-kwargs", f"{CLOUD}={{bad"]) == 2


def test_a_bucket_that_does_not_exist_is_rejected_naming_it(project: pytest.Pytester) -> None:
    dest = project.path / "dest"
    result, cert = certify(
        project,
        "--raycallbacks-conformance",
        CLOUD,
        OPTION,
        downloader_kwargs(CLOUD, "s3://no-such-models/extra", dest),
        "--raycallbacks-s3",
        "models=models",
    )
    assert entry(cert, CLOUD)["verdict"] == "rejected"
    assert result.ret == 1
    failures = failed(cert, CLOUD)
    assert {"phases.lifecycle", "callbackbase.errors"} <= set(failures)
    for check in ("phases.lifecycle", "callbackbase.errors"):
        happened = failures[check]["failure"]["happened"]
        assert "the bucket 'no-such-models' does not exist" in happened, happened
    assert files_under(dest) == {}


def test_without_its_kwargs_the_fix_names_the_option(project: pytest.Pytester) -> None:
    result, cert = certify(project, "--raycallbacks-conformance", CLOUD)
    constructor = failed(cert, CLOUD)["callbackbase.constructor"]["failure"]
    assert "CloudDownloader requires 'paths' field in kwargs" in constructor["happened"]
    assert f"{OPTION} '{CLOUD}=" in constructor["fix"]
    assert "fix:" in result.stdout.str() and OPTION in result.stdout.str()


def test_a_class_written_like_rays_test_callback(project: pytest.Pytester) -> None:
    _, cert = certify(project, "--raycallbacks-conformance", TESTING)
    fix = failed(cert, TESTING)["callbackbase.constructor"]["failure"]["fix"]
    assert OPTION in fix
    result, cert = certify(
        project, "--raycallbacks-conformance", TESTING, OPTION, f"{TESTING}={TESTING_KWARGS}"
    )
    assert entry(cert, TESTING)["verdict"] == "certified", failed(cert, TESTING)
    assert result.ret == 0


def test_kwargs_and_buckets_from_the_ini_and_a_yaml_file(project: pytest.Pytester) -> None:
    dest = project.path / "dest"
    (project.path / "kw.yaml").write_text(
        f"paths:\n  - [s3://models/extra, {dest}]\napi_token: not-in-the-certificate\n"
    )
    project.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        f"raycallbacks_conformance =\n    {OTHER}\n    {TESTING}\n"
        f"raycallbacks_callback_kwargs =\n    {OTHER}=@kw.yaml\n"
        f"    {TESTING}={TESTING_KWARGS}\n"
        "raycallbacks_s3 = models=models\n"
    )
    _, cert = certify(project)
    assert entry(cert, OTHER)["verdict"] == "certified", failed(cert, OTHER)
    assert entry(cert, TESTING)["verdict"] == "certified", failed(cert, TESTING)
    assert sorted(files_under(dest)) == ["config.json", "sub/tokenizer.bin"]
    assert entry(cert, OTHER)["callback_kwargs"]["api_token"] == "***"
    assert "not-in-the-certificate" not in (project.path / "cert.json").read_text()


def test_the_fresh_interpreter_builds_the_class_with_its_kwargs(
    project: pytest.Pytester,
) -> None:
    """It builds in the test session (whose conftest sets the state it needs) but not cold,
    as on a replica: only ``loading.fresh-interpreter`` says so."""
    project.makeconftest("import session_state\nsession_state.READY = True\n")
    spec = "needs_session:NeedsSession"
    _, cert = certify(project, "--raycallbacks-conformance", spec, OPTION, f'{spec}={{"mode": 1}}')
    failures = failed(cert, spec)
    assert set(failures) == {"loading.fresh-interpreter"}
    happened = failures["loading.fresh-interpreter"]["failure"]["happened"]
    assert "session_state.READY is not set (mode 1)" in happened


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([OPTION, f"{CLOUD}={{bad"], "is not valid JSON"),
        ([OPTION, f"{CLOUD}=[1]"], "got a list"),
        ([OPTION, 'elsewhere:Cls={"a": 1}'], "elsewhere:Cls is not among the callbacks"),
        ([OPTION, f'{CLOUD}={{"llm_config": 1}}'], "are passed by Ray itself"),
        (["--raycallbacks-s3", "models=missing-folder"], "does not exist"),
        (["--raycallbacks-s3", "Bad_Bucket=models"], "Bad_Bucket"),
        (
            ["--raycallbacks-s3", "models=models", "--raycallbacks-ray-address", "1.2.3.4:6379"],
            "--raycallbacks-s3-endpoint-reachable",
        ),
    ],
)
def test_bad_values_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    result = project.runpytest_inprocess("--raycallbacks-conformance", CLOUD, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_kwargs_for_a_phase_callback_are_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(plain="def callback(phase, config, data):\n    return None\n")
    result = project.runpytest_inprocess(
        "--raycallbacks-conformance", "plain.callback", OPTION, 'plain.callback={"a": 1}'
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "does not name a subclass of Ray's CallbackBase" in result.stderr.str()
