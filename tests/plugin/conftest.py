"""Fixtures of the plugin's tests: a user's project (``project``) to run the kit in.

Set up as in ``tests/conformance/conftest.py``: ``pytester`` registered by hand (pytest only
accepts ``pytest_plugins`` in the top-level conftest) and the kit's lazy imports preloaded
for ``pytester``'s in-process runs.
"""

from __future__ import annotations

import pytest

from tests.kit_preload import preload

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
