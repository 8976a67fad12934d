"""--raycallbacks-config: certifying against the user's own LLMConfig."""

from __future__ import annotations

import json

import pytest

from reference_runner import TINY_MODEL_PATH

FAKE = ("--raycallbacks-cluster", "fake")
ONE_GPU_GROUP = """
from ray.util import placement_group

def callback(phase, config, data):
    if phase == "post_download":
        return {"placement_group": placement_group([{"GPU": 1}])}
    return None
"""


def test_the_users_config_is_what_the_callback_sees(project: pytest.Pytester) -> None:
    project.makepyfile(onegpu=ONE_GPU_GROUP)
    project.path.joinpath("tp2.yaml").write_text(
        f"model_id: {TINY_MODEL_PATH}\nengine_kwargs:\n  tensor_parallel_size: 2\n"
    )
    result = project.runpytest_inprocess(
        *FAKE,
        "--raycallbacks-config",
        "tp2.yaml",
        "--raycallbacks-conformance",
        "mycb.callback",
        "--raycallbacks-conformance",
        "onegpu.callback",
        "--raycallbacks-report",
        "cert.json",
    )
    assert result.ret == 1
    cert = json.loads((project.path / "cert.json").read_text())
    assert cert["run"]["config"] == str(project.path / "tp2.yaml")
    verdicts = {c["spec"]: c for c in cert["callbacks"]}
    assert verdicts["mycb.callback"]["verdict"] == "certified"
    onegpu = verdicts["onegpu.callback"]
    failed = {c["id"]: c for c in onegpu["checks"] if c["outcome"] == "failed"}
    assert set(failed) == {"cluster.placement-group"}
    assert "at least 2 GPU(s)" in failed["cluster.placement-group"]["failure"]["expected"]


def test_a_config_whose_model_the_kit_cannot_download_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    project.path.joinpath("prod.yaml").write_text("model_id: meta-llama/Llama-2-7b\n")
    result = project.runpytest_inprocess(
        *FAKE, "--raycallbacks-config", "prod.yaml", "--raycallbacks-conformance", "mycb.callback"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "reference download" in result.stderr.str()
    assert "TINY_MODEL_PATH" in result.stderr.str()


def test_a_collection_error_in_the_users_tests_still_writes_an_incomplete_certificate(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_broken="def test_x(:\n    pass\n")
    result = project.runpytest_inprocess(
        *FAKE, "--raycallbacks-conformance", "mycb.callback", "--raycallbacks-report", "cert.json"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    cert = json.loads((project.path / "cert.json").read_text())
    assert cert["run"]["exit_status"] == int(pytest.ExitCode.INTERRUPTED)
    assert cert["callbacks"][0]["verdict"] == "incomplete"
