"""A Python-level network guard for the object store's tests: name look-ups and connections
off the loopback raise :class:`NetworkAccessError` (pyarrow's C++ client is not covered; its
tests assert what it downloaded)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class NetworkAccessError(AssertionError):
    """A test of the object store tried to reach an address off the loopback."""


def _check_host(host: object, also: tuple[str, ...] = ()) -> None:
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and (
        host in _LOOPBACK_HOSTS or host.startswith("127.") or host in also
    ):
        return
    raise NetworkAccessError(
        f"a test tried to reach {host!r}: only the local S3 server on 127.0.0.1 may be "
        "used here (is AWS_ENDPOINT_URL_S3 set? use the s3_object_store fixture)"
    )


@contextmanager
def loopback_only(also: tuple[str, ...] = ()) -> Iterator[None]:
    """Within the ``with`` body, ``socket.getaddrinfo``, ``socket.socket.connect`` and
    ``connect_ex`` refuse every host but the loopback and the addresses in ``also`` (e.g.
    this machine's own address, where a live Ray cluster's nodes listen)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_host(address[0], also)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_host(address[0], also)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            _check_host(host, also)
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield
