"""pytest-raycallbacks: the pytest plugin (entry point ``pytest11: raycallbacks``).

Importing this module must stay cheap: it imports neither Ray nor the conformance catalogue;
fixtures import what they need when a test requests them.
"""

from __future__ import annotations

import pytest

from .options import add_options
from .runner_fixture import callback_runner

__all__ = ["callback_runner"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "raycallbacks_live: the test uses a live Ray cluster (gpu_ray_cluster)",
    )
