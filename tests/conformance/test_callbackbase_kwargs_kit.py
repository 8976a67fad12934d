"""The kit on the ``CallbackBase`` subclasses Ray users have: ``callback_kwargs`` and a
local S3 (``--raycallbacks-callback-kwargs``, ``--raycallbacks-s3``), on the fake cluster.

Ray 2.60 ships one subclass, ``CloudDownloader``, which downloads ``s3://`` prefixes before
the model download; Ray's own test callback asserts a ``callback_kwargs`` key in its
constructor. Both are certified with their kwargs and rejected without them, naming the
option; a bucket that does not exist is rejected, naming the bucket. The kit runs in a
pytest process of its own, as a user runs it, under the loopback-only network guard
(``tests/object_store/guard_plugin.py``); the usage errors and the environment's
restoration are checked in this process (pytester), under the same guard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import HERE

from pytest_raycallbacks.cli import main as cli_main
from tests.object_store.network_guard import loopback_only

CLOUD = "ray.llm._internal.common.callbacks.cloud_downloader:CloudDownloader"
MISSING = "other_downloader:CloudDownloader"
TESTING = "ray_test_like:TestingCallback"
SESSION = "needs_session:NeedsSession"
TESTING_KWARGS = '{"kwargs_test_key": "kwargs_test_value"}'
OPTION = "--raycallbacks-callback-kwargs"
FILES = {"extra/config.json": b'{"a": 1}', "extra/sub/tokenizer.bin": b"\x00\x01"}
DOWNLOADED = {"config.json": b'{"a": 1}', "sub/tokenizer.bin": b"\x00\x01"}
REPOSITORY = HERE.parents[1]


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    with loopback_only():
        yield


def make_project(path: Path) -> Path:
    """A user's folder: the sample classes, and ``models/`` to serve as a bucket."""
    (path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for source in (HERE / "kwargs_callbacks").glob("*.py"):
        shutil.copy2(source, path / source.name)
    for key, body in FILES.items():
        file = path / "models" / key
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)
    return path


@dataclass(frozen=True)
class KitProcess:
    """A finished kit process: its exit status, output and certificate."""

    ret: int
    output: str
    cert: dict[str, Any]
    project: Path

    def entry(self, spec: str) -> dict[str, Any]:
        return next(c for c in self.cert["callbacks"] if c["spec"] == spec)

    def failed(self, spec: str) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.entry(spec)["checks"] if c["outcome"] == "failed"}


def certify(project: Path, *args: str) -> KitProcess:
    """Run the kit on the fake cluster in a pytest process of its own, in ``project``, with
    the network guard."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    command += ["-p", "tests.object_store.guard_plugin", *args]
    command += ["--raycallbacks-cluster", "fake", "--raycallbacks-report", "cert.json"]
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    cert = project / "cert.json"
    assert cert.exists(), f"no certificate written; output:\n{output[-4000:]}"
    return KitProcess(done.returncode, output, json.loads(cert.read_text()), project)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def downloader_kwargs(spec: str, uri: str, dest: Path) -> str:
    return f"{spec}={json.dumps({'paths': [[uri, str(dest)]]})}"


def environ() -> dict[str, str]:
    """``os.environ`` but pytest's own ``PYTEST_*`` variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


# ---------------------------------------------------------------------- with their kwargs


@pytest.fixture(scope="module")
def with_kwargs(tmp_path_factory: pytest.TempPathFactory) -> KitProcess:
    """One kit run, configured in the ini (kwargs from a YAML file for one class):
    CloudDownloader on an existing bucket, the same class (second spec) on a missing
    bucket, and the test-like class, each with its kwargs."""
    project = make_project(tmp_path_factory.mktemp("with-kwargs"))
    (project / "cloud.yaml").write_text(
        f"paths:\n  - [s3://models/extra, {project / 'dest'}]\napi_token: not-in-the-certificate\n"
    )
    missing = downloader_kwargs(MISSING, "s3://no-such-models/extra", project / "missing")
    (project / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        f"raycallbacks_conformance =\n    {CLOUD}\n    {MISSING}\n    {TESTING}\n"
        f"raycallbacks_callback_kwargs =\n    {CLOUD}=@cloud.yaml\n    {missing}\n"
        f"    {TESTING}={TESTING_KWARGS}\n"
        "raycallbacks_s3 = models=models\n"
    )
    return certify(project)


def test_clouddownloader_is_certified_and_its_files_arrive(with_kwargs: KitProcess) -> None:
    run, dest = with_kwargs, with_kwargs.project / "dest"
    callback = run.entry(CLOUD)
    assert callback["verdict"] == "certified", run.failed(CLOUD)
    assert files_under(dest) == DOWNLOADED
    assert callback["callback_kwargs"] == {
        "paths": [["s3://models/extra", str(dest)]],
        "api_token": "***",
    }
    assert "not-in-the-certificate" not in (run.project / "cert.json").read_text()
    assert run.cert["run"]["s3_buckets"] == {"models": str(run.project / "models")}
    constructor = next(c for c in callback["checks"] if c["id"] == "callbackbase.constructor")
    assert constructor["detail"] == "built with callback_kwargs ['api_token', 'paths']"


def test_verify_holds_only_for_the_certified_kwargs(with_kwargs: KitProcess) -> None:
    project, dest = with_kwargs.project, with_kwargs.project / "dest"
    only_cloud = {**with_kwargs.cert, "callbacks": [with_kwargs.entry(CLOUD)]}
    (project / "cloud-cert.json").write_text(json.dumps(only_cloud))
    (project / "deploy.yaml").write_text(
        f"paths:\n  - [s3://models/extra, {dest}]\napi_token: rotated-since\n"
    )
    verify = ["verify", str(project / "cloud-cert.json"), "--path", str(project)]
    assert cli_main([*verify, "--callback-kwargs", f"{CLOUD}=@{project / 'deploy.yaml'}"]) == 0
    same = json.dumps({"paths": [["s3://models/extra", str(dest)]], "api_token": "x"})
    assert cli_main([*verify, "--callback-kwargs", f"{CLOUD}={same}"]) == 0
    other = downloader_kwargs(CLOUD, "s3://models/extra", dest)  # no api_token
    assert cli_main([*verify, "--callback-kwargs", other]) == 1
    assert cli_main(verify) == 1  # deployed with none: not what was certified
    assert cli_main([*verify, "--callback-kwargs", f"{CLOUD}={{bad"]) == 2


def test_a_bucket_that_does_not_exist_is_rejected_naming_it(with_kwargs: KitProcess) -> None:
    run = with_kwargs
    assert run.entry(MISSING)["verdict"] == "rejected"
    assert run.ret == 1
    failures = run.failed(MISSING)
    assert set(failures) == {"callbackbase.run"}
    for check in ("callbackbase.run",):
        happened = failures[check]["failure"]["happened"]
        assert "the bucket 'no-such-models' does not exist" in happened, happened
    assert files_under(run.project / "missing") == {}


def test_a_class_written_like_rays_test_callback_is_certified(with_kwargs: KitProcess) -> None:
    assert with_kwargs.entry(TESTING)["verdict"] == "certified", with_kwargs.failed(TESTING)


# ---------------------------------------------------------------------- without them


@pytest.fixture(scope="module")
def without_kwargs(tmp_path_factory: pytest.TempPathFactory) -> KitProcess:
    """One kit run: both classes without their kwargs, and a class that builds only in
    the test session (its conftest sets the state it needs), with its kwargs."""
    project = make_project(tmp_path_factory.mktemp("without-kwargs"))
    (project / "conftest.py").write_text("import session_state\nsession_state.READY = True\n")
    return certify(
        project,
        *("--raycallbacks-conformance", CLOUD),
        *("--raycallbacks-conformance", TESTING),
        *("--raycallbacks-conformance", SESSION),
        OPTION,
        f'{SESSION}={{"mode": 1}}',
    )


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (CLOUD, "CloudDownloader requires 'paths' field in kwargs"),
        (TESTING, "KeyError: 'kwargs_test_key'"),
    ],
)
def test_without_its_kwargs_the_fix_names_the_option(
    without_kwargs: KitProcess, spec: str, error: str
) -> None:
    constructor = without_kwargs.failed(spec)["callbackbase.constructor"]["failure"]
    assert error in constructor["happened"]
    assert f"{OPTION} '{spec}=" in constructor["fix"]
    assert f"fix:      if {spec} needs callback_kwargs" in without_kwargs.output


def test_the_fresh_interpreter_builds_the_class_with_its_kwargs(
    without_kwargs: KitProcess,
) -> None:
    """It builds in the test session but not cold, as on a replica: only
    ``loading.fresh-interpreter`` says so."""
    failures = without_kwargs.failed(SESSION)
    assert set(failures) == {"loading.fresh-interpreter"}
    happened = failures["loading.fresh-interpreter"]["failure"]["happened"]
    assert "session_state.READY is not set (mode 1)" in happened


# ---------------------------------------------------------------------- in this process


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester.path)
    return pytester


def test_the_environment_is_restored_after_the_run(project: pytest.Pytester) -> None:
    before = environ()
    result = project.runpytest_inprocess(
        *("--raycallbacks-conformance", TESTING),
        *(OPTION, f"{TESTING}={TESTING_KWARGS}"),
        *("--raycallbacks-s3", "models=models"),
        *("--raycallbacks-cluster", "fake"),
    )
    assert result.ret == 0
    assert environ() == before  # the local S3's variables are gone again


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
