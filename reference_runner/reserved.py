"""Reserved keys of the shared ``data`` dict and the types they must hold.

The runner checks every reserved key a callback sets, whether returned or written in
place, against :data:`RESERVED_KEYS`; a wrong type is a :class:`CallbackReturnError`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from .downloadable import NodeModelDownloadable

LOCAL_NODE_DOWNLOAD_MODEL: Final = "local_node_download_model"
WORKER_NODE_DOWNLOAD_MODEL: Final = "worker_node_download_model"
PLACEMENT_GROUP: Final = "placement_group"
RUNTIME_ENV: Final = "runtime_env"
EXTRA_INIT_KWARGS: Final = "extra_init_kwargs"
SKIP_DEFAULT_INIT: Final = "skip_default_init"
DOWNLOAD_RESULT: Final = "download_result"

#: Keys only the system writes. A callback that sets one is at fault.
SYSTEM_KEYS: Final = frozenset({DOWNLOAD_RESULT})

_PLACEMENT_GROUP_ATTRS = ("id", "bundle_specs", "ready", "wait")


def _downloadable_problem(value: Any) -> str | None:
    if isinstance(value, NodeModelDownloadable):
        return None
    if isinstance(value, str) and value in NodeModelDownloadable.__members__:
        return None
    names = ", ".join(NodeModelDownloadable.__members__)
    return f"a NodeModelDownloadable or one of its names ({names})"


def is_placement_group(value: Any) -> bool:
    """True for a Ray ``PlacementGroup`` (or an object of the same shape, such as the fake
    cluster's), without importing Ray or evaluating any property."""
    module = sys.modules.get("ray.util.placement_group")
    if module is not None and isinstance(value, module.PlacementGroup):
        return True
    cls = type(value)
    return all(hasattr(cls, attr) for attr in _PLACEMENT_GROUP_ATTRS)


def _placement_group_problem(value: Any) -> str | None:
    if is_placement_group(value):
        return None
    return "a Ray placement group (the object ray.util.placement_group(...) returns)"


def _runtime_env_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "a dict Ray accepts as a runtime env (e.g. {'env_vars': {'A': '1'}})"
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        return f"a runtime env dict with str keys (non-str keys: {bad!r})"
    try:
        from ray.runtime_env import RuntimeEnv  # imported only once a runtime env is set
    except ImportError:  # pragma: no cover - ray is installed wherever runtime envs matter
        return None
    try:
        RuntimeEnv(**dict(value))
    except Exception as exc:
        return f"a runtime env Ray accepts; Ray rejected it: {type(exc).__name__}: {exc}"
    return None


def _dict_problem(value: Any) -> str | None:
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return None
    return "a dict with str keys (keyword arguments for the engine)"


def _bool_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else "a bool (True or False)"


def _download_result_problem(value: Any) -> str | None:
    from .download import ModelDownloadResult

    if isinstance(value, ModelDownloadResult):
        return None
    return "a ModelDownloadResult (this key is written by the system; do not set it)"


#: Each reserved key with a function returning ``None`` for a valid value, else a phrase
#: describing what was expected.
RESERVED_KEYS: Final[Mapping[str, Callable[[Any], str | None]]] = {
    LOCAL_NODE_DOWNLOAD_MODEL: _downloadable_problem,
    WORKER_NODE_DOWNLOAD_MODEL: _downloadable_problem,
    PLACEMENT_GROUP: _placement_group_problem,
    RUNTIME_ENV: _runtime_env_problem,
    EXTRA_INIT_KWARGS: _dict_problem,
    SKIP_DEFAULT_INIT: _bool_problem,
    DOWNLOAD_RESULT: _download_result_problem,
}

RESERVED_KEY_SET: Final = frozenset(RESERVED_KEYS)
#: The reserved keys callbacks may set (all but :data:`SYSTEM_KEYS`): the runner reads them,
#: so what a callback puts there changes what the node does.
CALLBACK_RESERVED_KEYS: Final = RESERVED_KEY_SET - SYSTEM_KEYS


def reserved_key_problem(key: str, value: Any) -> str | None:
    """Return what ``key`` should hold if ``value`` is wrong for it, else ``None``."""
    check = RESERVED_KEYS.get(key)
    return None if check is None else check(value)
