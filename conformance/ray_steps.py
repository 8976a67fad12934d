"""How messages name the steps of Ray's engine start (:mod:`reference_runner.ray_replica`).

One owner for the wording, shared by the recorded runs' readers (:mod:`conformance.runs`)
and the ``CallbackBase`` run rules (:mod:`conformance.ray_start_rules`).
"""

from __future__ import annotations

from typing import Final

from reference_runner.ray_replica import (
    CONSTRUCT,
    INITIALIZE_NODE,
    ON_AFTER_NODE_INIT,
    ON_BEFORE_NODE_INIT,
)

_STEP_NAMES: Final = {
    CONSTRUCT: "Ray's get_or_create_callback() (the constructor)",
    ON_BEFORE_NODE_INIT: "the hook on_before_node_init",
    INITIALIZE_NODE: "Ray's initialize_node (the download tasks, with the hook "
    "on_before_download_model_files_distributed)",
    ON_AFTER_NODE_INIT: "the hook on_after_node_init",
}


def step_name(step: str) -> str:
    """``the hook on_before_node_init``, ``Ray's initialize_node (...)``, ..."""
    return _STEP_NAMES.get(step, step)
