"""A hook's cloud-storage error names its bucket: Ray's wrapped message does not.

``reference_runner.cloud_errors.cloud_error_note`` reads the bucket from a botocore-shaped
``response["Error"]`` in the error or its causes; ``CallbackBaseAdapter`` adds it as a note
to what Ray's ``run_callback_sync`` raised (a note, unlike the cause, survives pickling back
from a Ray worker), and ``callbackbase.errors`` names it.
"""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest
from ray.llm._internal.common.callbacks.cloud_downloader import CloudDownloader

from conformance.callbackbase_rules import error_problems
from pytest_raycallbacks.object_store import LocalS3
from reference_runner import TINY_MODEL_PATH, CallbackRunner, LLMConfig
from reference_runner.cloud_errors import cloud_error_note
from reference_runner.ray_callback_base import CallbackBaseAdapter


class _Shaped(Exception):
    """An exception shaped like botocore's ClientError, without botocore."""

    def __init__(self, error: dict[str, Any], operation: str | None = None) -> None:
        super().__init__("An error occurred")
        self.response = {"Error": error}
        self.operation_name = operation


def test_the_note_names_the_bucket_from_the_cause_chain() -> None:
    cause = _Shaped({"Code": "NoSuchBucket", "BucketName": "gone"}, "ListObjectsV2")
    try:
        try:
            raise cause
        except _Shaped as inner:
            raise Exception("Error running callback method ...") from inner
    except Exception as outer:
        note = cloud_error_note(outer)
    assert note == (
        "cloud storage error during ListObjectsV2: the bucket 'gone' does not exist on the "
        "storage endpoint"
    )
    keyed = _Shaped({"Code": "NoSuchKey", "BucketName": "b", "Key": "k", "Message": "m"})
    assert cloud_error_note(keyed) == "cloud storage error: object 'k' in bucket 'b': NoSuchKey (m)"
    assert cloud_error_note(_Shaped({"Code": "AccessDenied"})) is None  # no bucket named
    assert cloud_error_note(ValueError("x")) is None


def _run(kwargs: dict[str, Any], tmp_path: Path) -> tuple[CallbackBaseAdapter, BaseException]:
    hooked = CallbackBaseAdapter(CloudDownloader, callback_kwargs=kwargs)
    config = LLMConfig(model_id=TINY_MODEL_PATH, model_cache_dir=str(tmp_path / "m"))
    with pytest.raises(Exception) as info:
        asyncio.run(CallbackRunner([hooked]).run_all(config))
    return hooked, info.value


@pytest.mark.parametrize("s3_object_store", [{"models": {"extra/a.txt": "A"}}], indirect=True)
def test_a_missing_bucket_is_named_in_the_error_and_by_the_rule(
    s3_object_store: LocalS3, tmp_path: Path
) -> None:
    hooked, error = _run({"paths": [["s3://no-such-models/extra", str(tmp_path / "d")]]}, tmp_path)
    assert "no-such-models" not in str(error)  # Ray's message does not name it...
    notes = "\n".join(getattr(error, "__notes__", ()))
    assert "the bucket 'no-such-models' does not exist" in notes  # ...the note does
    rebuilt = pickle.loads(pickle.dumps(error))  # as it crosses back from a worker
    assert rebuilt.__cause__ is None
    assert "no-such-models" in "\n".join(rebuilt.__notes__)
    (problem,) = error_problems(hooked.calls)
    assert "the bucket 'no-such-models' does not exist" in problem
    assert not any((tmp_path / "d").rglob("*"))  # Ray creates the folder, downloads nothing
