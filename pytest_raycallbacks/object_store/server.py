"""``LocalS3``: a real S3-protocol server on 127.0.0.1 for a test run (moto's server mode).

::

    with LocalS3() as s3:
        s3.add_buckets({"models": {"extra/config.json": "{}"}, "data": "tests/data"})
        with s3.applied_environment():      # boto3, pyarrow and Ray's code now use it
            CloudFileSystem.download_files(path=..., bucket_uri="s3://models/extra")
        assert s3.listing() == {"data": [...], "models": ["extra/config.json"]}

Thread, not subprocess: the server is moto's ``ThreadedMotoServer`` in a daemon thread of
the process that starts it (the pytest process), so it ends with that process whatever
happens (a crash, ``kill -9``, a CI time-out) and can never be left running; it starts
in milliseconds, once moto is imported. Clients in other processes (Ray workers) reach it
over TCP all the same. The price -- requests are served under the test process's GIL --
is small for the few small objects tests use. It listens on 127.0.0.1 only, on a free
port the OS picks; :meth:`LocalS3.start` waits at most ``start_timeout_s`` for it to answer
and otherwise raises :class:`ObjectStoreError`.

All state is moto's, which is per process: two ``LocalS3`` in one process serve the same
buckets, and :meth:`LocalS3.reset` (moto's reset) empties every one of them (and any
``moto.mock_aws`` state in the process). Importing this module imports neither moto nor
boto3; :meth:`LocalS3.start` does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from .buckets import BucketSpecs, ObjectBody, check_bucket_name, resolve_buckets
from .environment import (
    ACCESS_KEY_ID,
    DEFAULT_REGION,
    SECRET_ACCESS_KEY,
    applied_environment,
    s3_environment,
)
from .errors import ObjectStoreError

HOST: Final = "127.0.0.1"
#: Seconds :meth:`LocalS3.start` waits for the server to answer.
DEFAULT_START_TIMEOUT_S: Final = 10.0
_INSTALL_HINT: Final = "pip install 'pytest-raycallbacks[s3]' (or 'moto[server]>=5' boto3)"
_QUIET_LOGGERS: Final = ("werkzeug",)


def _opener() -> urllib.request.OpenerDirector:
    """A URL opener that ignores proxy settings (the server is on the loopback)."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_answers(url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers HTTP (any status), for at most ``timeout_s`` seconds;
    raise :class:`ObjectStoreError` naming the URL when it never does."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    opener = _opener()
    while True:
        remaining = deadline - time.monotonic()
        try:
            with opener.open(url, timeout=max(0.05, min(1.0, remaining))):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise ObjectStoreError(
                f"the local S3 server did not answer at {url} within {timeout_s:g} s "
                f"(last error: {type(last).__name__}: {last}); check that nothing blocks "
                "connections to 127.0.0.1, or raise start_timeout_s"
            )
        time.sleep(0.02)


class LocalS3(AbstractContextManager["LocalS3"]):
    """A moto S3 server on 127.0.0.1 and a handle on its buckets (see the module docstring).

    Args:
        region: the region clients are told to use (buckets are created there).
        start_timeout_s: how long :meth:`start` waits for the server to answer.

    Raises :class:`ObjectStoreError` when the server does not start or answer, when moto
    or boto3 is not installed, and for bad bucket specs or unknown buckets.
    """

    def __init__(
        self, *, region: str = DEFAULT_REGION, start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    ) -> None:
        self.region = region
        self.start_timeout_s = start_timeout_s
        self._server: Any = None
        self._endpoint: str | None = None
        self._client: Any = None
        self._log_levels: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether :meth:`start` succeeded and :meth:`stop` has not been called."""
        return self._endpoint is not None

    def start(self) -> LocalS3:
        """Start the server (a no-op when running) and wait until it answers."""
        if self.running:
            return self
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ObjectStoreError(
                f"the local S3 server needs moto's server mode ({exc}); {_INSTALL_HINT}"
            ) from exc
        self._quiet_request_logs()
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        # ThreadedMotoServer.start() waits, unbounded, for the socket to be bound: call it
        # from a helper thread so that our wait is bounded.
        starter = threading.Thread(target=server.start, name="raycallbacks-s3-start", daemon=True)
        starter.start()
        starter.join(self.start_timeout_s)
        if starter.is_alive():
            self._restore_request_logs()
            raise ObjectStoreError(
                f"the local S3 server (moto) did not bind {HOST} within "
                f"{self.start_timeout_s:g} s; see the thread's error above, or raise "
                "start_timeout_s"
            )
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            wait_until_answers(f"{endpoint}/moto-api/config", self.start_timeout_s)
        except ObjectStoreError:
            server.stop()
            self._restore_request_logs()
            raise
        self._server, self._endpoint = server, endpoint
        try:
            self._client = self._new_client()
        except Exception as exc:
            self.stop()
            raise ObjectStoreError(
                f"could not create a boto3 client for the local S3 server: {exc}; {_INSTALL_HINT}"
            ) from exc
        return self

    def stop(self) -> None:
        """Stop the server (a no-op when it is not running)."""
        server, self._server, self._endpoint, self._client = self._server, None, None, None
        if server is not None:
            server.stop()
        self._restore_request_logs()

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _quiet_request_logs(self) -> None:
        """One INFO line per request from werkzeug is noise in test logs: raise its level
        while the server runs (restored by :meth:`stop`)."""
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._log_levels.setdefault(name, logger.level)
            logger.setLevel(max(logger.level, logging.WARNING))

    def _restore_request_logs(self) -> None:
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels.clear()

    # ------------------------------------------------------------------ where it is

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``. Raises :class:`ObjectStoreError` when not running."""
        if self._endpoint is None:
            raise ObjectStoreError(
                "the local S3 server is not running: call LocalS3.start() (or use it as a "
                "context manager) first"
            )
        return self._endpoint

    def environment(self) -> dict[str, str]:
        """The variables that point clients at this server
        (:func:`~.environment.s3_environment`); :meth:`applied_environment` also removes
        :data:`~.environment.CLEARED_VARIABLES`."""
        return s3_environment(self.endpoint_url, region=self.region)

    def applied_environment(self) -> AbstractContextManager[None]:
        """A context manager that applies :meth:`environment` to ``os.environ`` and
        restores it exactly afterwards."""
        return applied_environment(self.environment())

    def client(self) -> Any:
        """The boto3 S3 client for this server (configured explicitly, created when the
        server started). Raises :class:`ObjectStoreError` when not running."""
        if self._client is None:
            raise ObjectStoreError(
                "the local S3 server is not running: call LocalS3.start() (or use it as a "
                "context manager) first"
            )
        return self._client

    def _new_client(self) -> Any:
        """A boto3 S3 client for this server. It is created inside
        :meth:`applied_environment`, so that nothing the machine or the user set (a profile
        that does not exist here, a config file, a proxy) takes part; once created it
        reads nothing more from ``os.environ``."""
        import boto3
        from botocore.config import Config

        with self.applied_environment():
            return boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
                region_name=self.region,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )

    # ------------------------------------------------------------------ buckets

    def create_bucket(self, name: str) -> None:
        """Create an empty bucket. Raises :class:`ObjectStoreError` for an invalid name or
        a bucket that already exists."""
        check_bucket_name(name)
        if name in self.buckets():
            raise ObjectStoreError(
                f"bucket {name!r} already exists on the local S3 server; give each bucket "
                "once, or call reset() first"
            )
        self.client().create_bucket(Bucket=name)

    def put_object(self, bucket: str, key: str, body: ObjectBody | str) -> None:
        """Store one object (``str`` is UTF-8 encoded; a ``Path`` is uploaded from disk)
        in an existing bucket."""
        self._require_bucket(bucket)
        client = self.client()
        if isinstance(body, Path):
            client.upload_file(str(body), bucket, key)
        else:
            data = body.encode("utf-8") if isinstance(body, str) else body
            client.put_object(Bucket=bucket, Key=key, Body=data)

    def add_buckets(self, specs: BucketSpecs) -> dict[str, list[str]]:
        """Create buckets and their objects from ``{bucket: {key: bytes | str} | folder}``
        or ``"BUCKET=DIR"`` strings (see :mod:`.buckets`); everything is checked before
        anything is created. Returns the keys each new bucket holds."""
        resolved = resolve_buckets(specs)
        existing = set(self.buckets()) & set(resolved)
        if existing:
            raise ObjectStoreError(
                f"bucket(s) {sorted(existing)} already exist on the local S3 server; give "
                "each bucket once, or call reset() first"
            )
        for name, objects in resolved.items():
            self.client().create_bucket(Bucket=name)
            for key, body in objects.items():
                self.put_object(name, key, body)
        return {name: self.keys(name) for name in resolved}

    def buckets(self) -> list[str]:
        """The names of the buckets the server holds, sorted."""
        response = self.client().list_buckets()
        return sorted(bucket["Name"] for bucket in response.get("Buckets", []))

    def keys(self, bucket: str) -> list[str]:
        """The keys of every object in ``bucket``, sorted. Raises
        :class:`ObjectStoreError` naming the bucket when it does not exist."""
        self._require_bucket(bucket)
        return sorted(self._iter_keys(bucket))

    def listing(self) -> dict[str, list[str]]:
        """Every bucket with the keys it holds."""
        return {name: sorted(self._iter_keys(name)) for name in self.buckets()}

    def read(self, bucket: str, key: str) -> bytes:
        """The bytes of one object. Raises :class:`ObjectStoreError` naming the bucket or
        key when it does not exist."""
        self._require_bucket(bucket)
        client = self.client()
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            raise ObjectStoreError(
                f"bucket {bucket!r} holds no object {key!r}; it holds {self.keys(bucket)}"
            ) from None

    def reset(self) -> None:
        """Remove every bucket (moto's reset: all of moto's state in this process)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with _opener().open(request, timeout=self.start_timeout_s) as response:
            json.loads(response.read() or b"{}")

    def _iter_keys(self, bucket: str) -> Iterator[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _require_bucket(self, bucket: str) -> None:
        names = self.buckets()
        if bucket not in names:
            raise ObjectStoreError(
                f"the local S3 server has no bucket {bucket!r} (it has {names}); create it "
                "with add_buckets({...}) or create_bucket(name)"
            )


__all__ = ["DEFAULT_START_TIMEOUT_S", "HOST", "LocalS3", "wait_until_answers"]
