"""``LocalS3``: a real S3 server on 127.0.0.1, its buckets, and clients that reach it."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pytest_raycallbacks.object_store import LocalS3, ObjectStoreError
from pytest_raycallbacks.object_store.server import wait_until_answers
from tests.object_store.network_guard import NetworkAccessError


def no_proxy_get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_server_listens_on_the_loopback(s3_object_store: LocalS3) -> None:
    assert s3_object_store.running
    url = s3_object_store.endpoint_url
    host, port = url.removeprefix("http://").split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert 200 <= no_proxy_get(f"{url}/moto-api/config") < 300
    assert s3_object_store.buckets() == []


def test_buckets_from_a_folder_and_a_dict(s3_object_store: LocalS3, tmp_path: Path) -> None:
    (tmp_path / "extra" / "sub").mkdir(parents=True)
    (tmp_path / "extra" / "a.txt").write_text("A")
    (tmp_path / "extra" / "sub" / "b.bin").write_bytes(b"\x00\xff")
    created = s3_object_store.add_buckets(
        {"models": tmp_path, "data": {"x/y.json": '{"k": 1}', "raw": b"\x01"}}
    )
    assert created == {"models": ["extra/a.txt", "extra/sub/b.bin"], "data": ["raw", "x/y.json"]}
    assert s3_object_store.listing() == {
        "data": ["raw", "x/y.json"],
        "models": ["extra/a.txt", "extra/sub/b.bin"],
    }
    assert s3_object_store.read("models", "extra/sub/b.bin") == b"\x00\xff"
    assert s3_object_store.read("data", "x/y.json") == b'{"k": 1}'


def test_bucket_specs_from_the_command_line_form(s3_object_store: LocalS3, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("F")
    assert s3_object_store.add_buckets([f"cli-bucket={tmp_path}"]) == {"cli-bucket": ["f.txt"]}


def test_a_boto3_client_built_from_the_environment_sees_the_objects(
    s3_object_store: LocalS3,
) -> None:
    import boto3

    s3_object_store.add_buckets({"models": {"extra/a.txt": "A", "extra/b.txt": "B"}})
    client = boto3.client("s3")  # endpoint, region and credentials from os.environ only
    listed = client.list_objects_v2(Bucket="models", Prefix="extra/")
    assert sorted(obj["Key"] for obj in listed["Contents"]) == ["extra/a.txt", "extra/b.txt"]
    assert client.get_object(Bucket="models", Key="extra/b.txt")["Body"].read() == b"B"
    assert client.meta.endpoint_url == s3_object_store.endpoint_url


def test_each_test_starts_with_no_bucket(s3_object_store: LocalS3) -> None:
    s3_object_store.add_buckets({"one": {"k": "v"}})
    s3_object_store.reset()
    assert s3_object_store.listing() == {}


@pytest.mark.parametrize(
    "s3_object_store",
    [{"param-bucket": {"a": "1"}}, [f"param-bucket={Path(__file__).parent}"]],
    indirect=True,
)
def test_buckets_by_indirect_parametrization(s3_object_store: LocalS3) -> None:
    assert s3_object_store.buckets() == ["param-bucket"]
    assert s3_object_store.keys("param-bucket")


def test_a_missing_bucket_is_named(s3_object_store: LocalS3) -> None:
    s3_object_store.add_buckets({"models": {"k": "v"}})
    with pytest.raises(ObjectStoreError, match=r"no bucket 'nope' \(it has \['models'\]\)"):
        s3_object_store.keys("nope")
    with pytest.raises(ObjectStoreError, match="no bucket 'nope'"):
        s3_object_store.put_object("nope", "k", b"v")
    with pytest.raises(ObjectStoreError, match=r"'models' holds no object 'missing'; it holds"):
        s3_object_store.read("models", "missing")


def test_a_bucket_cannot_be_created_twice(s3_object_store: LocalS3) -> None:
    s3_object_store.add_buckets({"models": {"k": "v"}})
    with pytest.raises(ObjectStoreError, match=r"\['models'\] already exist"):
        s3_object_store.add_buckets({"models": {"k2": "v"}, "other": {}})
    assert s3_object_store.buckets() == ["models"]  # nothing created: checked first
    with pytest.raises(ObjectStoreError, match="'models' already exists"):
        s3_object_store.create_bucket("models")
    s3_object_store.create_bucket("empty")
    assert s3_object_store.listing() == {"empty": [], "models": ["k"]}


def test_lifecycle_start_stop_and_errors_when_not_running() -> None:
    store = LocalS3()
    assert not store.running
    with pytest.raises(ObjectStoreError, match=r"not running: call LocalS3.start\(\)"):
        _ = store.endpoint_url
    with store:
        url = store.endpoint_url
        assert store.start() is store and store.endpoint_url == url  # idempotent
    assert not store.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()


def test_waiting_for_a_server_that_never_answers_is_bounded() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    start = time.monotonic()
    with pytest.raises(ObjectStoreError, match=rf"did not answer at http://127.0.0.1:{port}/x"):
        wait_until_answers(f"http://127.0.0.1:{port}/x", timeout_s=0.3)
    assert time.monotonic() - start < 5


def test_the_network_guard_refuses_other_hosts() -> None:
    with pytest.raises(NetworkAccessError, match=r"'s3\.amazonaws\.com'"):
        socket.create_connection(("s3.amazonaws.com", 443), timeout=1)
    with pytest.raises(NetworkAccessError, match=r"'10\.0\.0\.1'"), socket.socket() as sock:
        sock.connect(("10.0.0.1", 80))


def test_without_moto_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)
    with pytest.raises(ObjectStoreError, match=r"pip install 'pytest-raycallbacks\[s3\]'"):
        LocalS3().start()
