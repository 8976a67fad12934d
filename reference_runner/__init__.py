"""reference_runner: the reference implementation of the generic callback hook system for
Ray Serve LLM node initialization.

Importing it imports neither pytest nor Ray; Ray is imported when a function needs it
(``initialize_node``, or validating a ``runtime_env`` a callback set). Ray 2.60's
``CallbackBase`` subclasses run as callbacks through :class:`CallbackBaseAdapter`
(:mod:`reference_runner.ray_callback_base`; their ``CallbackCtx`` in
:mod:`reference_runner.ray_callback_ctx`). The rules such a subclass must follow to be
certified are the conformance catalogue's, not the runtime's (docs/design.md §Layers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from .config import LLMConfig, PlacementGroupConfig
from .download import ModelDownloadResult, NodeDownload, download_model
from .download_check import final_group_missing_model, nodes_missing_model
from .downloadable import NodeModelDownloadable
from .errors import (
    CallbackError,
    CallbackLoadError,
    CallbackReturnError,
    CallbackTimeoutError,
    InitializationError,
    ModelSourceError,
    PlacementGroupTimeoutError,
    RayNotConnectedError,
    TimeoutCause,
)
from .loading import load_callback
from .node_init import InitializeNodeOutput, initialize_node
from .phases import PHASES
from .placement_wait import PlacementGroupInfeasibleError
from .protocol import Callback
from .ray_callback_base import (
    CallbackBaseAdapter,
    RayCallbackContractError,
    is_callback_base_class,
    resolve_callback_base_class,
)
from .reserved import RESERVED_KEYS, SYSTEM_KEYS
from .runner import CallbackRunner
from .trace import CallbackFailure, KeyOrigin, TraceEntry

#: A tiny model folder (config, tokenizer files, a small safetensors file) shipped with
#: the package, for the reference download and the default conformance config.
TINY_MODEL_PATH: Final = str(Path(__file__).parent / "_data" / "tiny-model")

__version__ = "0.1.0"

__all__ = [
    "PHASES",
    "RESERVED_KEYS",
    "SYSTEM_KEYS",
    "TINY_MODEL_PATH",
    "Callback",
    "CallbackBaseAdapter",
    "CallbackError",
    "CallbackFailure",
    "CallbackLoadError",
    "CallbackReturnError",
    "CallbackRunner",
    "CallbackTimeoutError",
    "InitializationError",
    "InitializeNodeOutput",
    "KeyOrigin",
    "LLMConfig",
    "ModelDownloadResult",
    "ModelSourceError",
    "NodeDownload",
    "NodeModelDownloadable",
    "PlacementGroupConfig",
    "PlacementGroupInfeasibleError",
    "PlacementGroupTimeoutError",
    "RayCallbackContractError",
    "RayNotConnectedError",
    "TimeoutCause",
    "TraceEntry",
    "download_model",
    "final_group_missing_model",
    "initialize_node",
    "is_callback_base_class",
    "load_callback",
    "nodes_missing_model",
    "resolve_callback_base_class",
]
