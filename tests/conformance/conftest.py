"""Fixtures of the conformance kit's tests.

The kit is exercised as a user runs it: a callback module in a folder of its own and
``pytest --raycallbacks-conformance ...`` run there (``pytester``, or a subprocess for the
corpora). ``pytester`` is registered here rather than with ``pytest_plugins``, which pytest
only accepts in the top-level conftest.

Everything a kit run imports lazily is imported once here
(:func:`tests.kit_preload.preload`): ``pytester``'s in-process runs restore
``sys.modules`` afterwards and would otherwise re-import Ray and the fake cluster each time.
"""

from __future__ import annotations

import pytest

from tests.kit_preload import preload

preload()


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
