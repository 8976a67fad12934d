"""Naming the bucket a failed cloud-storage request was about.

Ray wraps a hook's error as ``Exception("Error running callback method ...: <message>")``,
and botocore's message for a missing bucket (``An error occurred (NoSuchBucket) when calling
the ListObjectsV2 operation: The specified bucket does not exist``) does not say which
bucket. The bucket is in the error's ``response["Error"]["BucketName"]``; this module reads
it (without importing botocore: any exception with a botocore-shaped ``response`` dict, in
the error or its chain of causes) so that a note can name it. A note survives pickling, so
it also crosses back from a Ray worker, where the causes do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

#: How far down ``__cause__``/``__context__`` to look.
_MAX_DEPTH = 8


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_fields(exc: BaseException) -> Mapping[str, Any] | None:
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, Mapping) else None
    return error if isinstance(error, Mapping) else None


def cloud_error_note(exc: BaseException) -> str | None:
    """A sentence naming the bucket (and key) a cloud-storage error in ``exc`` or its causes
    was about, with the storage's error code; ``None`` when there is none."""
    for link in _chain(exc):
        error = _error_fields(link)
        if error is None or not error.get("BucketName"):
            continue
        code = str(error.get("Code") or type(link).__name__)
        bucket = str(error["BucketName"])
        operation = getattr(link, "operation_name", None)
        during = f" during {operation}" if operation else ""
        if code == "NoSuchBucket":
            what = f"the bucket {bucket!r} does not exist on the storage endpoint"
        elif error.get("Key"):
            what = f"object {str(error['Key'])!r} in bucket {bucket!r}: {code}"
        else:
            what = f"bucket {bucket!r}: {code}"
        message = error.get("Message")
        detail = f" ({message})" if message else ""
        return f"cloud storage error{during}: {what}{detail}"
    return None


__all__ = ["cloud_error_note"]
