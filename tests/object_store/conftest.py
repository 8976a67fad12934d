"""``pytester`` for the fixture's own test (registered by hand: pytest only accepts
``pytest_plugins`` in the top-level conftest), and a guard that fails any test here that
looks up or connects to an address off the loopback. The fixtures (``s3_object_store``,
``raycallbacks_s3_server``) come from the plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.object_store.network_guard import loopback_only


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Every test here fails if it looks up or connects to a host off the loopback."""
    with loopback_only():
        yield


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
