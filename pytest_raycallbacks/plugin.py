"""pytest-raycallbacks: the pytest plugin (entry point ``pytest11: raycallbacks``).

It registers the options (:mod:`.options`), exposes the fixtures (``fake_ray_cluster``,
``gpu_ray_cluster``, ``callback_runner``, ``s3_object_store`` and its session server
``raycallbacks_s3_server`` (docs/object_store.md), and ``raycallbacks_check`` for the kit's
items) and
the markers, validates the options on every run (:func:`.kit.settings.read_settings`), and
creates the conformance kit (:class:`pytest_raycallbacks.kit.Kit`) only when
``--raycallbacks-conformance`` names callbacks; ``--raycallbacks-list-checks`` imports the
catalogue, prints it and exits.

Importing this module must stay cheap: it imports neither Ray nor the conformance catalogue
nor hypothesis nor coverage.py; fixtures import what they need when a test requests them.
"""

from __future__ import annotations

import pytest

from .fake_ray.fixture import fake_ray_cluster
from .kit.fixture import raycallbacks_check
from .kit.settings import read_settings
from .live.fixture import gpu_ray_cluster
from .object_store.fixture import raycallbacks_s3_server, s3_object_store
from .options import add_options
from .runner_fixture import callback_runner

__all__ = [
    "callback_runner",
    "fake_ray_cluster",
    "gpu_ray_cluster",
    "raycallbacks_check",
    "raycallbacks_s3_server",
    "s3_object_store",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--raycallbacks-list-checks``: print the catalogue and exit 0."""
    if not config.getoption("raycallbacks_list_checks", default=False):
        return None
    from conformance import text_listing

    print(text_listing(), end="")
    return 0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fake_ray_cluster(**kw): shape the fake_ray_cluster fixture")
    config.addinivalue_line(
        "markers",
        "raycallbacks_live: the test uses a live Ray cluster (gpu_ray_cluster)",
    )
    config.addinivalue_line("markers", "physical_gpu: needs physical GPUs (see gpu_ray_cluster)")
    config.addinivalue_line(
        "markers", "raycallbacks: a conformance check collected by --raycallbacks-conformance"
    )
    settings = read_settings(config)  # a bad option value is a UsageError (exit status 4)
    if settings.active:
        from .kit.session import KIT_KEY, PLUGIN_NAME, Kit

        kit = Kit(config, settings)
        config.stash[KIT_KEY] = kit
        config.pluginmanager.register(kit, PLUGIN_NAME)
