"""``SPEC=JSON`` / ``SPEC=@FILE`` callback_kwargs: reading, masking, hashing
(``pytest_raycallbacks.callback_kwargs``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_raycallbacks.callback_kwargs import (
    MASK,
    CallbackKwargsError,
    certificate_record,
    kwargs_sha256,
    masked,
    parse_all,
    parse_one,
)


def test_json_and_files(tmp_path: Path) -> None:
    assert parse_one('m:C={"a": [1, "x=y"]}') == ("m:C", {"a": [1, "x=y"]})
    (tmp_path / "k.json").write_text('{"paths": [["s3://b/p", "/d"]]}')
    (tmp_path / "k.yaml").write_text("paths:\n  - [s3://b/p, /d]\n")
    from_json = parse_one("m:C=@k.json", base_dir=tmp_path)
    from_yaml = parse_one("m:C=@k.yaml", base_dir=tmp_path)
    assert from_json == from_yaml == ("m:C", {"paths": [["s3://b/p", "/d"]]})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("m:C", "is not SPEC=JSON"),
        ('={"a": 1}', "is not SPEC=JSON"),
        ("m:C={'a': 1}", r"m:C: .* is not valid JSON"),
        ("m:C=[1]", "got a list"),
        ("m:C=@missing.json", "cannot read"),
        ("m:C=@bad.yaml", "is not valid YAML"),
        ("m:C=@list.yml", "got a list"),
    ],
)
def test_bad_values_name_the_spec_and_the_fix(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    (tmp_path / "list.yml").write_text("- 1\n")
    with pytest.raises(CallbackKwargsError, match=match):
        parse_one(text, base_dir=tmp_path)


def test_a_spec_given_twice_is_refused() -> None:
    assert parse_all(['a:B={"x": 1}', "", 'c:D={"y": 2}']) == {"a:B": {"x": 1}, "c:D": {"y": 2}}
    with pytest.raises(CallbackKwargsError, match="a:B is given twice"):
        parse_all(['a:B={"x": 1}', 'a:B={"y": 2}'])


def test_secret_looking_values_are_masked_at_any_depth() -> None:
    kwargs = {
        "paths": [["s3://b/p", "/d"]],
        "hf_token": "hf_abc",
        "nested": {"API_KEY": "k", "region": "eu", "list": [{"db_password": "p"}]},
        "auth": {"user": "u"},
    }
    assert masked(kwargs) == {
        "paths": [["s3://b/p", "/d"]],
        "hf_token": MASK,
        "nested": {"API_KEY": MASK, "region": "eu", "list": [{"db_password": MASK}]},
        "auth": MASK,
    }
    assert "hf_abc" not in json.dumps(certificate_record(kwargs))


def test_the_hash_ignores_order_and_secrets_but_not_values() -> None:
    base = kwargs_sha256({"a": 1, "b": [1, 2], "token": "one"})
    assert kwargs_sha256({"b": [1, 2], "a": 1, "token": "two"}) == base
    assert kwargs_sha256({"a": 1, "b": [2, 1], "token": "one"}) != base
    assert kwargs_sha256({}) != base
