"""Fixtures of the plugin's tests (options, collection, summary, certificate, waivers).

The kit is exercised as a user runs it: a callback module in a folder of its own and
``pytest --raycallbacks-conformance ...`` run there (``pytester``, or a subprocess for the
corpora). ``pytester`` is registered here rather than with ``pytest_plugins``, which pytest
only accepts in the top-level conftest.

Everything a kit run imports lazily is imported once here
(:func:`pytest_raycallbacks.kit_preload.preload`): ``pytester``'s in-process runs restore
``sys.modules`` afterwards and would otherwise re-import Ray and the fake cluster each time.
"""

from __future__ import annotations

import pytest

from pytest_raycallbacks.kit_preload import preload

preload()


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


GOOD_CALLBACK = """
def callback(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"max_model_len": 4096}}
    return None
"""
BAD_CALLBACK = """
def callback(phase, config, data):
    if phase == "pre_initialization":
        return {"extra_init_kwarg": {"max_model_len": 4096}}
    return None
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project folder: ``mycb.py`` (certifiable) and ``badcb.py`` (rejected by
    ``merge.reaches-output`` only), and an ini that quiets pytest-asyncio."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(mycb=GOOD_CALLBACK, badcb=BAD_CALLBACK)
    return pytester
