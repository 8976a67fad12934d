"""Importing, once, everything a conformance run imports lazily.

``pytester``'s in-process runs (``runpytest_inprocess``) restore ``sys.modules`` after each
run: modules a run imported lazily (Ray's, the fake cluster's, the kit's) are dropped and
imported again by the next run, and a fake cluster rebuilt from re-imported modules does not
behave like the first one. Calling :func:`preload` before such runs (in a ``conftest.py``)
keeps all of them imported for the whole session. A plain pytest run never needs this.
"""

from __future__ import annotations

import importlib
import tempfile
from typing import Final

_MODULES: Final = (
    "ray",
    "ray.cloudpickle",
    "ray.runtime_env",
    "ray.util.placement_group",
    "ray.util.scheduling_strategies",
    "hypothesis",
    "hypothesis.strategies",
    "conformance",
    "reference_runner",
    "pytest_raycallbacks.certificate",
    "pytest_raycallbacks.checkrun",
    "pytest_raycallbacks.hosts",
    "pytest_raycallbacks.kit",
    "pytest_raycallbacks.summary",
    "pytest_raycallbacks.suite",
    "coverage",
    "conformance.chain",
    "pytest_raycallbacks.chain_suite",
    "pytest_raycallbacks.coverage_report",
    "pytest_raycallbacks.kit_extras",
)


def preload() -> None:
    """Import the kit's lazy imports and run one scenario on the fake cluster (which
    imports the fake cluster's own lazy modules)."""
    for name in _MODULES:
        importlib.import_module(name)
    from conformance import Settings
    from conformance.harness import run_scenario

    from .hosts import FakeHost

    with tempfile.TemporaryDirectory(prefix="raycallbacks-preload-") as tmp:
        run_scenario(
            FakeHost(),
            None,
            Settings(cache_dir=tmp).base_config(),
            scenario="preload",
            timeout_s=30.0,
            placement_timeout_s=1.0,
        )
