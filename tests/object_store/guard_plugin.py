"""The network guard as a pytest plugin, for a pytest process the tests start themselves
(``-p tests.object_store.guard_plugin``, with the repository root on ``PYTHONPATH``): from
``pytest_configure`` to ``pytest_unconfigure``, name look-ups and connections off the
loopback raise :class:`~tests.object_store.network_guard.NetworkAccessError`."""

from __future__ import annotations

import contextlib

import pytest

from tests.object_store.network_guard import loopback_only

_GUARD = contextlib.ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    _GUARD.enter_context(loopback_only())


def pytest_unconfigure(config: pytest.Config) -> None:
    _GUARD.close()
