"""The environment that points clients at the server, applied and restored exactly."""

from __future__ import annotations

import os

import pytest

from pytest_raycallbacks.object_store import (
    CLEARED_VARIABLES,
    applied_environment,
    s3_environment,
)

ENDPOINT = "http://127.0.0.1:1234"


def test_the_environment_names_the_endpoint_for_every_client() -> None:
    env = s3_environment(ENDPOINT, region="eu-west-3", environ={})
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == ENDPOINT
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "eu-west-3"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_S3_ADDRESSING_STYLE"] == "path"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost"
    assert not set(env) & set(CLEARED_VARIABLES)


def test_no_proxy_keeps_what_was_there() -> None:
    env = s3_environment(ENDPOINT, environ={"no_proxy": "corp.example, localhost"})
    assert env["NO_PROXY"] == "corp.example,localhost,127.0.0.1"


def test_applied_then_restored_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "developer")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    before = dict(os.environ)
    env = s3_environment(ENDPOINT)
    with applied_environment(env):
        for name, value in env.items():
            assert os.environ[name] == value
        for name in CLEARED_VARIABLES:
            assert name not in os.environ
        os.environ["UNRELATED_SET_INSIDE"] = "kept"
    assert os.environ.pop("UNRELATED_SET_INSIDE") == "kept"
    assert dict(os.environ) == before


def test_restored_when_the_body_raises() -> None:
    before = dict(os.environ)
    with pytest.raises(RuntimeError, match="inside"), applied_environment(s3_environment(ENDPOINT)):
        raise RuntimeError("inside")
    assert dict(os.environ) == before
