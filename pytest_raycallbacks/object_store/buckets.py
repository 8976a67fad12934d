"""What the buckets of the local S3 server hold, from a dict or from folders.

A bucket's contents come from either

* a mapping ``{key: bytes | str}`` (``str`` is stored UTF-8 encoded), or
* a folder: each file under it becomes an object whose key is the file's path relative to
  the folder, with ``/`` separators (``DIR/extra/a.txt`` -> key ``extra/a.txt``).

Many buckets are given as ``{bucket: mapping | folder}`` or as ``"BUCKET=DIR"`` strings
(the command-line form). Everything is checked before anything is uploaded, and each
error names the bucket, key or folder at fault and how to fix it. Stdlib only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, TypeAlias

from .errors import ObjectStoreError

#: One bucket's contents: objects by key, or a folder whose files become the objects.
BucketSource: TypeAlias = "Mapping[str, bytes | str] | str | os.PathLike[str]"
#: Many buckets: ``{bucket: source}``, or ``"BUCKET=DIR"`` strings.
BucketSpecs: TypeAlias = "Mapping[str, BucketSource] | Iterable[str]"
#: What an object holds once resolved: its bytes, or the file to upload.
ObjectBody: TypeAlias = "bytes | Path"

_BUCKET_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS: Final = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_BUCKET_RULES: Final = (
    "S3 bucket names are 3-63 characters of lowercase letters, digits, '.' and '-', "
    "start and end with a letter or digit, have no '..' and are not an IP address"
)
_MAX_KEY_BYTES: Final = 1024


def check_bucket_name(name: object) -> str:
    """``name`` if it is a valid S3 bucket name; else :class:`ObjectStoreError` saying
    the rules."""
    if not isinstance(name, str):
        raise ObjectStoreError(
            f"bucket name {name!r} is a {type(name).__name__}, not a str. {_BUCKET_RULES}"
        )
    if not _BUCKET_NAME.match(name) or ".." in name or _IP_ADDRESS.match(name):
        raise ObjectStoreError(f"bucket name {name!r} is not valid: {_BUCKET_RULES}")
    return name


def check_key(bucket: str, key: object) -> str:
    """``key`` if it is a valid object key for ``bucket`` (a non-empty str of at most
    1024 UTF-8 bytes); else :class:`ObjectStoreError`."""
    if not isinstance(key, str) or not key:
        raise ObjectStoreError(
            f"bucket {bucket!r}: object key {key!r} is not a non-empty str; keys are paths "
            "such as 'extra/config.json'"
        )
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise ObjectStoreError(
            f"bucket {bucket!r}: object key {key[:40]!r}... is longer than S3's "
            f"{_MAX_KEY_BYTES} bytes; shorten it"
        )
    return key


def parse_bucket_spec(text: str) -> tuple[str, Path]:
    """``"BUCKET=DIR"`` as ``(bucket, Path(DIR))``. The folder is checked later, by
    :func:`folder_objects`. Raises :class:`ObjectStoreError` for a malformed spec."""
    bucket, sep, directory = text.partition("=")
    bucket, directory = bucket.strip(), directory.strip()
    if not sep or not bucket or not directory:
        raise ObjectStoreError(
            f"bucket spec {text!r} is not BUCKET=DIR: give a bucket name, '=', and the "
            "folder whose files become its objects, e.g. models=tests/data/models"
        )
    return check_bucket_name(bucket), Path(directory)


def folder_objects(bucket: str, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Each file under ``directory`` by its key (its relative path, ``/``-separated),
    sorted by key. Raises :class:`ObjectStoreError` when ``directory`` is not a folder."""
    root = Path(directory)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise ObjectStoreError(
            f"bucket {bucket!r}: {str(root)!r} {what}; give the folder whose files become "
            "the bucket's objects (BUCKET=DIR)"
        )
    files = (path for path in root.rglob("*") if path.is_file())
    return {check_key(bucket, path.relative_to(root).as_posix()): path for path in sorted(files)}


def mapping_objects(bucket: str, objects: Mapping[str, bytes | str]) -> dict[str, bytes]:
    """The objects of a ``{key: bytes | str}`` mapping, with ``str`` encoded UTF-8.
    Raises :class:`ObjectStoreError` for a bad key or a value of another type."""
    out: dict[str, bytes] = {}
    for key, body in objects.items():
        check_key(bucket, key)
        if isinstance(body, str):
            out[key] = body.encode("utf-8")
        elif isinstance(body, bytes | bytearray | memoryview):
            out[key] = bytes(body)
        else:
            raise ObjectStoreError(
                f"bucket {bucket!r}: object {key!r} is a {type(body).__name__}; give its "
                "contents as bytes or str"
            )
    return out


def source_objects(bucket: str, source: BucketSource) -> dict[str, ObjectBody]:
    """One bucket's objects from a mapping or a folder (see the module docstring)."""
    if isinstance(source, Mapping):
        return dict(mapping_objects(bucket, source))
    if isinstance(source, str | os.PathLike):
        return dict(folder_objects(bucket, source))
    raise ObjectStoreError(
        f"bucket {bucket!r}: contents given as a {type(source).__name__}; give a mapping "
        "{key: bytes | str} or the path of a folder"
    )


def resolve_buckets(specs: BucketSpecs) -> dict[str, dict[str, ObjectBody]]:
    """Every bucket's objects from ``{bucket: source}`` or ``"BUCKET=DIR"`` strings, all
    checked before anything is uploaded. A bucket named twice is an error."""
    if isinstance(specs, str):
        specs = [specs]
    pairs: list[tuple[str, BucketSource]]
    if isinstance(specs, Mapping):
        pairs = [(check_bucket_name(name), source) for name, source in specs.items()]
    else:
        pairs = []
        for text in specs:
            if not isinstance(text, str):
                raise ObjectStoreError(
                    f"bucket spec {text!r} is a {type(text).__name__}; give 'BUCKET=DIR' "
                    "strings or a mapping {bucket: {key: bytes | str} | folder}"
                )
            pairs.append(parse_bucket_spec(text))
    out: dict[str, dict[str, ObjectBody]] = {}
    for name, source in pairs:
        if name in out:
            raise ObjectStoreError(
                f"bucket {name!r} is given twice; give each bucket once (put both folders' "
                "files under one folder)"
            )
        out[name] = source_objects(name, source)
    return out


__all__ = [
    "BucketSource",
    "BucketSpecs",
    "ObjectBody",
    "check_bucket_name",
    "check_key",
    "folder_objects",
    "mapping_objects",
    "parse_bucket_spec",
    "resolve_buckets",
    "source_objects",
]
