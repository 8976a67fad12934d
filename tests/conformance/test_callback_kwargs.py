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


def test_the_plugin_exposes_the_s3_fixtures_without_importing_moto_boto3_or_ray() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_raycallbacks.plugin as p\n"
        "assert {'s3_object_store', 'raycallbacks_s3_server'} <= set(p.__all__)\n"
        "print(sorted(m for m in ('ray', 'moto', 'boto3', 'botocore') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_verify_compares_the_deploys_kwargs_with_the_certified_hash() -> None:
    from pytest_raycallbacks.verify import kwargs_findings

    certified = {"paths": [["s3://b/p", "/d"]], "hf_token": "old"}
    entries = [
        {"spec": "m:Cb", "style": "callbackbase", **certificate_record(certified)},
        {"spec": "m.plain", "style": "callback"},
    ]
    rotated = {"paths": [["s3://b/p", "/d"]], "hf_token": "new"}
    assert kwargs_findings(entries, {"m:Cb": rotated}) == []
    (none,) = kwargs_findings(entries, {})
    assert "none were given" in none.what and "old" not in none.what
    (other,) = kwargs_findings(entries, {"m:Cb": {"paths": []}})
    assert 'the deploy\'s are {"paths": []}' in other.what
    found = kwargs_findings(entries, {"m:Cb": certified, "m.plain": {"a": 1}, "x:Y": {}})
    assert [(f.spec, f.what.split(",")[0]) for f in found] == [
        ("x:Y", "callback_kwargs given for it"),
        ("m.plain", "callback_kwargs given"),
    ]
