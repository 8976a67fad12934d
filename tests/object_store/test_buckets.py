"""Bucket contents from dicts, folders and ``BUCKET=DIR`` specs, checked before upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_raycallbacks.object_store import ObjectStoreError, parse_bucket_spec, resolve_buckets
from pytest_raycallbacks.object_store.buckets import check_bucket_name, folder_objects


def make_tree(root: Path) -> Path:
    (root / "extra" / "sub").mkdir(parents=True)
    (root / "extra" / "a.txt").write_text("A")
    (root / "extra" / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (root / "top.json").write_text("{}")
    return root


def test_a_folder_becomes_objects_keyed_by_relative_path(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "models")
    objects = folder_objects("models", root)
    assert list(objects) == ["extra/a.txt", "extra/sub/b.bin", "top.json"]
    assert objects["extra/sub/b.bin"] == root / "extra" / "sub" / "b.bin"


def test_spec_strings_and_mappings_resolve_alike(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "models")
    from_text = resolve_buckets([f"models={root}", "cfg=" + str(root / "extra")])
    from_mapping = resolve_buckets({"models": root, "cfg": str(root / "extra")})
    assert from_text == from_mapping
    assert list(from_text["cfg"]) == ["a.txt", "sub/b.bin"]


def test_a_mapping_encodes_str_as_utf8() -> None:
    resolved = resolve_buckets({"data": {"k/é.txt": "é", "raw": b"\xff"}})
    assert resolved == {"data": {"k/é.txt": "é".encode(), "raw": b"\xff"}}


def test_parse_bucket_spec() -> None:
    assert parse_bucket_spec(" models = some/dir ") == ("models", Path("some/dir"))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("models", "is not BUCKET=DIR"),
        ("=dir", "is not BUCKET=DIR"),
        ("models=", "is not BUCKET=DIR"),
        ("Models=dir", "bucket name 'Models' is not valid"),
    ],
)
def test_malformed_specs_say_the_form(spec: str, match: str) -> None:
    with pytest.raises(ObjectStoreError, match=match):
        parse_bucket_spec(spec)


@pytest.mark.parametrize("name", ["ab", "-ab", "ab-", "a..b", "192.168.0.1", "a_b", "x" * 64])
def test_invalid_bucket_names_are_refused_with_the_rules(name: str) -> None:
    with pytest.raises(ObjectStoreError, match="lowercase letters, digits"):
        check_bucket_name(name)


def test_valid_bucket_names_pass() -> None:
    for name in ("abc", "models", "my.bucket-1", "x" * 63):
        assert check_bucket_name(name) == name


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ObjectStoreError, match=rf"bucket 'models': '{missing}' does not exist"):
        resolve_buckets([f"models={missing}"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ObjectStoreError, match="is not a folder"):
        resolve_buckets({"models": tmp_path / "file"})


def test_a_bucket_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreError, match="bucket 'models' is given twice"):
        resolve_buckets([f"models={tmp_path}", f"models={tmp_path}"])


@pytest.mark.parametrize(
    ("objects", "match"),
    [
        ({"": b"x"}, "object key '' is not a non-empty str"),
        ({"k" * 1025: b"x"}, "longer than S3's 1024 bytes"),
        ({"k": 3}, "object 'k' is a int; give its contents as bytes or str"),
    ],
)
def test_bad_objects_are_named(objects: dict[str, object], match: str) -> None:
    with pytest.raises(ObjectStoreError, match=match):
        resolve_buckets({"data": objects})  # type: ignore[dict-item]


def test_bad_sources_are_named() -> None:
    with pytest.raises(ObjectStoreError, match="contents given as a int"):
        resolve_buckets({"data": 3})  # type: ignore[dict-item]
    with pytest.raises(ObjectStoreError, match="is a int; give 'BUCKET=DIR' strings"):
        resolve_buckets([3])  # type: ignore[list-item]
