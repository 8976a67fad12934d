"""The ``s3_object_store`` pytest fixture: a local S3 server with the buckets a test asks for.

::

    def test_download(s3_object_store, tmp_path):
        s3_object_store.add_buckets({"models": {"extra/a.txt": "A"}})
        CloudFileSystem.download_files(path=str(tmp_path), bucket_uri="s3://models/extra")
        assert (tmp_path / "a.txt").read_text() == "A"

    @pytest.mark.parametrize(
        "s3_object_store", [{"models": "tests/data/models"}, ["models=tests/data/models"]],
        indirect=True,
    )
    def test_from_a_folder(s3_object_store): ...

One server is started per session (per xdist worker), on first use, by
``raycallbacks_s3_server``; it stops at the end of the session, and, being a thread of the
test process (``docs/object_store.md``), cannot outlive it. Each test that requests
``s3_object_store`` gets it emptied (no bucket from an earlier test), with the buckets of
its ``request.param`` (``{bucket: {key: bytes | str} | folder}`` or ``"BUCKET=DIR"``
strings) created, and with its environment applied to ``os.environ`` for the test
(restored exactly afterwards), so that boto3, pyarrow and Ray's cloud code reach it.

Importing this module imports neither moto, boto3 nor Ray: the fixtures import
:mod:`.server` when they run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import LocalS3


@pytest.fixture(scope="session")
def raycallbacks_s3_server() -> Iterator[LocalS3]:
    """The session's local S3 server (:class:`~.server.LocalS3`), started on first use.
    Prefer ``s3_object_store``, which empties it and applies its environment per test."""
    from .server import LocalS3

    with LocalS3() as server:
        yield server


@pytest.fixture
def s3_object_store(
    raycallbacks_s3_server: LocalS3, request: pytest.FixtureRequest
) -> Iterator[LocalS3]:
    """The local S3 server for one test: emptied, holding the buckets of ``request.param``
    when parametrized indirectly, with its environment applied to ``os.environ`` until
    the test ends. Use its ``add_buckets``, ``endpoint_url``, ``listing``, ``keys`` and
    ``read`` (:class:`~.server.LocalS3`)."""
    server = raycallbacks_s3_server
    server.reset()
    buckets = getattr(request, "param", None)
    if buckets is not None:
        server.add_buckets(buckets)
    try:
        with server.applied_environment():
            yield server
    finally:
        server.reset()


__all__ = ["raycallbacks_s3_server", "s3_object_store"]
