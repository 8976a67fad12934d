"""Importing, once, everything a conformance run imports lazily (for the tests' conftests).

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
    "conformance.chain",
    "reference_runner",
    "coverage",
    "pytest_raycallbacks.kit.session",
    "pytest_raycallbacks.kit.collection",
    "pytest_raycallbacks.kit.check_item",
    "pytest_raycallbacks.kit.clusters",
    "pytest_raycallbacks.report.certificate",
    "pytest_raycallbacks.report.summary",
    "pytest_raycallbacks.coverage.report",
    "pytest_raycallbacks.chain.item",
    # Ray's own path for CallbackBase classes (pyarrow and numpy load once per process).
    "reference_runner.ray_replica",
    "conformance.ray_harness",
    "conformance.checks.callbackbase",
    "ray.llm._internal.common.utils.download_utils",
    "ray.llm._internal.serve.utils.node_initialization_utils",
)


def preload() -> None:
    """Import the kit's lazy imports and run one scenario on the fake cluster (which
    imports the fake cluster's own lazy modules)."""
    for name in _MODULES:
        importlib.import_module(name)
    from conformance import Settings
    from conformance.harness import run_scenario
    from pytest_raycallbacks.fake_ray import FakeRayCluster
    from pytest_raycallbacks.kit.clusters import FakeCheckCluster
    from reference_runner import TINY_MODEL_PATH
    from reference_runner.ray_llm import ray_llm_config_class

    ray_llm_config_class()
    with FakeRayCluster() as cluster:  # one replica start by Ray's code
        cluster.run_ray_node_initialization(
            {
                "model_loading_config": {"model_id": "preload", "model_source": TINY_MODEL_PATH},
                "callback_config": {
                    "callback_class": "ray.llm._internal.common.callbacks.base:CallbackBase"
                },
            }
        )
    with tempfile.TemporaryDirectory(prefix="raycallbacks-preload-") as tmp:
        run_scenario(
            FakeCheckCluster(),
            None,
            Settings(cache_dir=tmp).base_config(),
            scenario="preload",
            timeout_s=30.0,
            placement_timeout_s=1.0,
        )
