"""Ray 2.60's own ``CloudDownloader`` downloading from the local S3 server.

It is built as Ray's ``LLMConfig.get_or_create_callback`` builds it (every argument by
keyword, ``callback_kwargs`` = ``{"paths": [[uri, local dir], ...]}``) and its hook is called
as Ray's ``download_model_files`` calls it, on the node:
``callback.run_callback_sync("on_before_download_model_files_distributed")``. Ray's
``CloudFileSystem`` sends ``s3://`` URIs to boto3, which finds the server through
``AWS_ENDPOINT_URL_S3`` (the ``s3_object_store`` fixture applies the environment).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from ray.llm._internal.common.callbacks.cloud_downloader import CloudDownloader
from ray.llm._internal.common.utils.download_utils import NodeModelDownloadable
from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

from pytest_raycallbacks.object_store import LocalS3
from reference_runner import TINY_MODEL_PATH, CallbackRunner
from reference_runner import LLMConfig as ReferenceLLMConfig
from reference_runner.ray_callback_base import CallbackBaseAdapter

HOOK = "on_before_download_model_files_distributed"
MODELS = {
    "extra/config.json": '{"a": 1}',
    "extra/sub/tokenizer.bin": b"\x00\x01\x02",
    "elsewhere/not-this.txt": "outside the prefix",
}


def build_as_ray(paths: list[list[str]], raise_error_on_callback: bool = True) -> Any:
    llm_config = LLMConfig(
        model_loading_config={"model_id": "cloud-downloader-test"},
        llm_engine="vLLM",
        callback_config={
            "callback_class": CloudDownloader,
            "callback_kwargs": {"paths": paths},
            "raise_error_on_callback": raise_error_on_callback,
        },
    )
    return CloudDownloader(
        raise_error_on_callback=raise_error_on_callback,
        llm_config=llm_config,
        ctx_kwargs={
            "worker_node_download_model": NodeModelDownloadable.MODEL_AND_TOKENIZER,
            "placement_group": None,
            "runtime_env": {"env_vars": {}},
        },
        paths=paths,
    )


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("s3_object_store", [{"models": MODELS}], indirect=True)
def test_downloads_every_object_under_the_prefix(s3_object_store: LocalS3, tmp_path: Path) -> None:
    s3_object_store.add_buckets({"configs": {"lora/adapter.json": "{}"}})
    callback = build_as_ray(
        [["s3://models/extra", str(tmp_path / "extra")], ["s3://configs/lora", str(tmp_path / "l")]]
    )
    callback.run_callback_sync(HOOK)
    assert files_under(tmp_path) == {
        "extra/config.json": b'{"a": 1}',
        "extra/sub/tokenizer.bin": b"\x00\x01\x02",
        "l/adapter.json": b"{}",
    }


@pytest.mark.parametrize("s3_object_store", [{"models": MODELS}], indirect=True)
def test_a_copy_shipped_as_ray_ships_it_downloads_too(
    s3_object_store: LocalS3, tmp_path: Path
) -> None:
    from ray import cloudpickle

    callback = build_as_ray([["s3://models/extra", str(tmp_path)]])
    shipped = cloudpickle.loads(cloudpickle.dumps(callback.llm_config))
    assert shipped is not callback.llm_config
    cloudpickle.loads(cloudpickle.dumps(callback)).run_callback_sync(HOOK)
    assert sorted(files_under(tmp_path)) == ["config.json", "sub/tokenizer.bin"]


def test_a_missing_bucket_fails_naming_it(
    s3_object_store: LocalS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = build_as_ray([["s3://no-such-bucket/extra", str(tmp_path / "dest")]])
    with caplog.at_level(logging.ERROR), pytest.raises(Exception) as info:
        callback.run_callback_sync(HOOK)
    error = info.value
    assert type(error) is Exception  # Ray's run_callback_sync wraps the hook's error
    assert str(error).startswith(f"Error running callback method '{HOOK}' on CloudDownloader:")
    assert "NoSuchBucket" in str(error)
    cause: Any = error.__cause__
    assert cause.response["Error"] == {
        "Code": "NoSuchBucket",
        "Message": "The specified bucket does not exist",
        "BucketName": "no-such-bucket",
    }
    assert "Error downloading files from s3://no-such-bucket/extra" in caplog.text
    assert files_under(tmp_path) == {}


def test_with_raise_error_on_callback_false_a_missing_bucket_is_only_logged(
    s3_object_store: LocalS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = build_as_ray([["s3://no-such-bucket/x", str(tmp_path)]], False)
    with caplog.at_level(logging.ERROR):
        callback.run_callback_sync(HOOK)
    assert f"Error running callback method '{HOOK}' on CloudDownloader" in caplog.text
    assert files_under(tmp_path) == {}


@pytest.mark.parametrize("s3_object_store", [{"models": MODELS}], indirect=True)
def test_a_prefix_with_no_objects_downloads_nothing_and_raises_nothing(
    s3_object_store: LocalS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ray's behaviour, worth knowing: a mistyped path inside an existing bucket passes."""
    callback = build_as_ray([["s3://models/extra-typo", str(tmp_path / "dest")]])
    with caplog.at_level(logging.INFO):
        callback.run_callback_sync(HOOK)
    assert files_under(tmp_path) == {}
    assert "No files matching filters to download from s3://models/extra-typo" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "CloudDownloader requires 'paths' field in kwargs"),
        ({"paths": [["http://models/extra", "/tmp/x"]]}, r"must start with one of \('s3://'"),
    ],
)
def test_bad_kwargs_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CloudDownloader(llm_config=None, raise_error_on_callback=True, ctx_kwargs={}, **kwargs)


@pytest.mark.parametrize("s3_object_store", [{"models": MODELS}], indirect=True)
def test_rays_pyarrow_filesystem_reaches_the_server_too(
    s3_object_store: LocalS3, tmp_path: Path
) -> None:
    """``pyarrow-s3://`` goes to Ray's PyArrowFileSystem, which reads AWS_ENDPOINT_URL_S3."""
    from ray.llm._internal.common.utils.cloud_utils import CloudFileSystem

    CloudFileSystem.download_files(path=str(tmp_path), bucket_uri="pyarrow-s3://models/extra")
    assert sorted(files_under(tmp_path)) == ["config.json", "sub/tokenizer.bin"]


@pytest.mark.parametrize("s3_object_store", [{"models": MODELS}], indirect=True)
def test_through_the_adapter_on_a_shipped_copy(s3_object_store: LocalS3, tmp_path: Path) -> None:
    hooked = CallbackBaseAdapter(
        CloudDownloader, callback_kwargs={"paths": [["s3://models/extra", str(tmp_path / "d")]]}
    )
    config = ReferenceLLMConfig(model_id=TINY_MODEL_PATH, model_cache_dir=str(tmp_path / "m"))
    asyncio.run(CallbackRunner([hooked]).run_all(config))
    assert sorted(files_under(tmp_path / "d")) == ["config.json", "sub/tokenizer.bin"]
    download = [call for call in hooked.calls if call.hook == HOOK]
    assert len(download) == 1 and download[0].on_worker_copy and download[0].raised is None
