"""How a Ray 2.60 ``CallbackCtx`` maps onto our shared ``data`` dict, in both directions.

==============================  ==============================================================
``ctx`` field                   ``data`` key
==============================  ==============================================================
worker_node_download_model      ``worker_node_download_model`` (Ray's enum <-> ours, by name)
placement_group                 ``placement_group``
runtime_env                     ``runtime_env``
custom_data                     :data:`CUSTOM_DATA_KEY` (``"custom_data"``)
run_init_node=False             ``local_node_download_model`` and
                                ``worker_node_download_model`` = ``NONE`` (Ray then skips
                                ``initialize_node``: no model download at node init);
                                ``skip_default_init=True`` in ``data`` -> ``False``
==============================  ==============================================================

:func:`apply_data_to_ctx` copies ``data`` onto ``ctx`` before a hook; :class:`CtxState`
snapshots ``ctx`` so that :func:`data_from_ctx` turns the fields a hook *changed* into the
mapping merged into ``data``. What ``data`` cannot express is returned as notes. Nothing
here imports Ray unless Ray's own ``NodeModelDownloadable`` is asked for.
"""

from __future__ import annotations

import copy
import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .downloadable import NodeModelDownloadable
from .reserved import (
    LOCAL_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RUNTIME_ENV,
    SKIP_DEFAULT_INIT,
    WORKER_NODE_DOWNLOAD_MODEL,
)

#: Where Ray 2.60 defines its ``NodeModelDownloadable`` (needs pyarrow to import).
RAY_DOWNLOAD_UTILS_MODULE: Final = "ray.llm._internal.common.utils.download_utils"

#: The ``data`` key ``ctx.custom_data`` maps to.
CUSTOM_DATA_KEY: Final = "custom_data"
#: The ``CallbackCtx`` fields, in declaration order.
CTX_FIELDS: Final = (
    "worker_node_download_model",
    "placement_group",
    "runtime_env",
    "custom_data",
    "run_init_node",
)
#: Which ``data`` key(s) each ``ctx`` field maps to.
CTX_TO_DATA: Final[Mapping[str, tuple[str, ...]]] = {
    "worker_node_download_model": (WORKER_NODE_DOWNLOAD_MODEL,),
    "placement_group": (PLACEMENT_GROUP,),
    "runtime_env": (RUNTIME_ENV,),
    "custom_data": (CUSTOM_DATA_KEY,),
    "run_init_node": (LOCAL_NODE_DOWNLOAD_MODEL, WORKER_NODE_DOWNLOAD_MODEL),
}

MISSING: Final[Any] = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def ray_download_enum() -> type[enum.Enum] | None:
    """Ray's own ``NodeModelDownloadable`` if it can be imported (it needs pyarrow), else
    ``None``; the adapter then puts :class:`~reference_runner.NodeModelDownloadable`
    members (same names) into ``ctx``."""
    module = sys.modules.get(RAY_DOWNLOAD_UTILS_MODULE)
    if module is None:
        try:
            import importlib

            module = importlib.import_module(RAY_DOWNLOAD_UTILS_MODULE)
        except Exception:
            return None
    found = getattr(module, "NodeModelDownloadable", None)
    return found if isinstance(found, type) and issubclass(found, enum.Enum) else None


def is_download_choice(value: Any) -> bool:
    """True for a member of Ray's ``NodeModelDownloadable`` or of ours (same names)."""
    if isinstance(value, NodeModelDownloadable):
        return True
    cls = type(value)
    return (
        isinstance(value, enum.Enum)
        and cls.__name__ == "NodeModelDownloadable"
        and cls.__module__ == RAY_DOWNLOAD_UTILS_MODULE
        and value.name in NodeModelDownloadable.__members__
    )


def to_ctx_download_choice(value: Any) -> Any:
    """``data``'s download choice (our member or its name) as Ray's member, or ours when
    Ray's enum cannot be imported. Anything else is returned unchanged."""
    if isinstance(value, str) and value in NodeModelDownloadable.__members__:
        value = NodeModelDownloadable[value]
    if not isinstance(value, NodeModelDownloadable):
        return value
    ray_enum = ray_download_enum()
    return value if ray_enum is None else ray_enum[value.name]


def to_data_download_choice(value: Any) -> Any:
    """A ``ctx`` download choice (Ray's member or ours) as our member; others unchanged."""
    if is_download_choice(value):
        return NodeModelDownloadable[value.name]
    return value


def snapshot_value(value: Any) -> Any:
    """A copy to compare a ``ctx`` value against later (deep where it can be)."""
    if isinstance(value, dict | list):
        try:
            return copy.deepcopy(value)
        except Exception:
            return copy.copy(value)
    return value


@dataclass(frozen=True)
class CtxState:
    """The ``ctx`` fields at one moment (``runtime_env``/``custom_data`` copied)."""

    values: Mapping[str, Any]

    @classmethod
    def of(cls, ctx: Any) -> CtxState:
        """Snapshot ``ctx`` (a field it lacks is recorded as missing)."""
        return cls({name: snapshot_value(getattr(ctx, name, MISSING)) for name in CTX_FIELDS})

    def changed_fields(self, ctx: Any) -> tuple[str, ...]:
        """The fields of ``ctx`` that differ from this snapshot."""
        changed = []
        for name in CTX_FIELDS:
            before, after = self.values[name], getattr(ctx, name, MISSING)
            if name == "placement_group":
                differs = before is not after
            else:
                try:
                    differs = bool(before != after) or type(before) is not type(after)
                except Exception:
                    differs = before is not after
            if differs:
                changed.append(name)
        return tuple(changed)


def apply_data_to_ctx(ctx: Any, data: Mapping[str, Any]) -> None:
    """Copy what ``data`` holds onto ``ctx`` before a hook (see the module's table).

    ``run_init_node`` is only ever set to ``False`` (by ``skip_default_init=True``); it is
    otherwise the class's own decision, kept between hooks as Ray keeps one instance.
    """
    if WORKER_NODE_DOWNLOAD_MODEL in data:
        ctx.worker_node_download_model = to_ctx_download_choice(data[WORKER_NODE_DOWNLOAD_MODEL])
    if data.get(PLACEMENT_GROUP) is not None:
        ctx.placement_group = data[PLACEMENT_GROUP]
    if isinstance(data.get(RUNTIME_ENV), Mapping):
        ctx.runtime_env = snapshot_value(dict(data[RUNTIME_ENV]))
    if isinstance(data.get(CUSTOM_DATA_KEY), dict):
        ctx.custom_data = dict(data[CUSTOM_DATA_KEY])
    if data.get(SKIP_DEFAULT_INIT) is True:
        ctx.run_init_node = False


def data_from_ctx(
    before: CtxState, ctx: Any, changed: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The mapping to merge into ``data`` for the ``changed`` fields of ``ctx``, and notes
    on changes ``data`` cannot express."""
    out: dict[str, Any] = {}
    unmapped: list[str] = []
    if "worker_node_download_model" in changed:
        out[WORKER_NODE_DOWNLOAD_MODEL] = to_data_download_choice(ctx.worker_node_download_model)
    if "placement_group" in changed and ctx.placement_group is not None:
        out[PLACEMENT_GROUP] = ctx.placement_group
    if "runtime_env" in changed:
        if ctx.runtime_env is None:
            unmapped.append(
                "ctx.runtime_env was set to None: data cannot remove a runtime env, so "
                f"data['runtime_env'] keeps {before.values['runtime_env']!r}"
            )
        else:
            out[RUNTIME_ENV] = ctx.runtime_env
    if "custom_data" in changed:
        out[CUSTOM_DATA_KEY] = ctx.custom_data
    if "run_init_node" in changed:
        if ctx.run_init_node is False:
            out[LOCAL_NODE_DOWNLOAD_MODEL] = NodeModelDownloadable.NONE
            out[WORKER_NODE_DOWNLOAD_MODEL] = NodeModelDownloadable.NONE
        else:
            unmapped.append(
                "ctx.run_init_node went back to True: downloads follow data's "
                "local_node_download_model and worker_node_download_model as they are"
            )
    return out, tuple(unmapped)


__all__ = [
    "CTX_FIELDS",
    "CTX_TO_DATA",
    "CUSTOM_DATA_KEY",
    "RAY_DOWNLOAD_UTILS_MODULE",
    "CtxState",
    "apply_data_to_ctx",
    "data_from_ctx",
    "is_download_choice",
    "ray_download_enum",
    "snapshot_value",
    "to_ctx_download_choice",
    "to_data_download_choice",
]
