"""``CallbackBase`` subclasses run both by Ray 2.60's own code and by ``CallbackBaseAdapter``
in ``test_ray_agreement.py``.

Each writes what it saw into :data:`JOURNAL` (one list for the process): its constructor
arguments, and ``ctx`` on entering and on leaving each hook, with whether it ran on the
instance or on a shipped copy (the download hook runs on a copy Ray pickles to each
node). The test compares the journals of the two runs.
"""

from __future__ import annotations

import copy
import enum
from typing import Any

from ray.llm._internal.common.callbacks.base import CallbackBase

#: Every entry recorded since the last ``JOURNAL.clear()``: ``(event, details)``.
JOURNAL: list[tuple[str, dict[str, Any]]] = []


def describe_choice(value: Any) -> str:
    """A download choice as ``module.Class.NAME`` (which enum it is matters to Ray)."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__module__}.{type(value).__qualname__}.{value.name}"
    return f"<not an enum: {value!r}>"


def describe_group(value: Any) -> str | None:
    """A placement group by its id (it survives pickling), or ``None``."""
    if value is None:
        return None
    group_id = getattr(value, "id", None)
    return group_id.hex() if hasattr(group_id, "hex") else f"<not a group: {value!r}>"


def ctx_snapshot(ctx: Any) -> dict[str, Any]:
    """The ``ctx`` fields, comparable across runs and processes."""
    return {
        "worker_node_download_model": describe_choice(ctx.worker_node_download_model),
        "placement_group": describe_group(ctx.placement_group),
        "runtime_env": copy.deepcopy(ctx.runtime_env),
        "custom_data": copy.deepcopy(ctx.custom_data),
        "run_init_node": ctx.run_init_node,
    }


class Recording(CallbackBase):
    """Records its construction; :meth:`enter`/:meth:`leave` record ``ctx`` in hooks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built_at = id(self)
        JOURNAL.append(
            (
                "init",
                {
                    "class": type(self).__qualname__,
                    "keywords": sorted(kwargs),
                    "raise_error_on_callback": self.raise_error_on_callback,
                    "kwargs": copy.deepcopy(self.kwargs),
                    "llm_config_is_none": self.llm_config is None,
                    "ctx": ctx_snapshot(self.ctx),
                },
            )
        )

    def where(self) -> str:
        return "instance" if id(self) == self.built_at else "shipped copy"

    def enter(self, hook: str) -> None:
        JOURNAL.append((f"{hook}:enter", {"on": self.where(), "ctx": ctx_snapshot(self.ctx)}))

    def leave(self, hook: str) -> None:
        JOURNAL.append((f"{hook}:leave", {"on": self.where(), "ctx": ctx_snapshot(self.ctx)}))


def choice(ctx: Any, name: str) -> Any:
    """The member ``name`` of the enum Ray put in ``ctx``."""
    return type(ctx.worker_node_download_model)[name]


class KwargsTestCallback(Recording):
    """Ray's own ``TestingCallback`` (``test_callback_base.py`` in Ray's test suite): its
    constructor asserts a callback_kwargs key; its first hook turns node init off."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        assert kwargs["kwargs_test_key"] == "kwargs_test_value"

    async def on_before_node_init(self) -> None:
        self.enter("before")
        assert self.ctx.worker_node_download_model == choice(self.ctx, "MODEL_AND_TOKENIZER")
        self.ctx.worker_node_download_model = choice(self.ctx, "NONE")
        self.ctx.custom_data["ctx_test_key"] = "ctx_test_value"
        self.ctx.run_init_node = False
        self.leave("before")

    def on_before_download_model_files_distributed(self) -> None:
        self.enter("download")  # never called: run_init_node is False

    async def on_after_node_init(self) -> None:
        self.enter("after")
        assert self.ctx.worker_node_download_model == choice(self.ctx, "NONE")
        assert self.ctx.custom_data["ctx_test_key"] == "ctx_test_value"
        self.leave("after")


class ChangesCtxInEveryHook(Recording):
    """Changes ``ctx`` in each hook, node init left on (so the download hook runs)."""

    async def on_before_node_init(self) -> None:
        self.enter("before")
        self.ctx.worker_node_download_model = choice(self.ctx, "TOKENIZER_ONLY")
        env = dict(self.ctx.runtime_env or {})
        env["env_vars"] = {**env.get("env_vars", {}), "BEFORE": "1"}
        self.ctx.runtime_env = env
        self.ctx.custom_data["before"] = self.kwargs.get("marker")
        self.leave("before")

    def on_before_download_model_files_distributed(self) -> None:
        self.enter("download")
        self.ctx.worker_node_download_model = choice(self.ctx, "EXCLUDE_SAFETENSORS")
        self.ctx.custom_data["download"] = True
        self.leave("download")

    async def on_after_node_init(self) -> None:
        self.enter("after")
        self.ctx.custom_data["after"] = sorted(self.ctx.custom_data)
        env = dict(self.ctx.runtime_env or {})
        env["env_vars"] = {**env.get("env_vars", {}), "AFTER": "1"}
        self.ctx.runtime_env = env
        self.leave("after")


class PlainDefHooks(Recording):
    """Plain ``def`` hooks where Ray awaits (Ray calls them inline)."""

    def on_before_node_init(self) -> None:  # type: ignore[override]
        self.enter("before")
        self.ctx.custom_data["sync"] = "before"
        self.leave("before")

    def on_before_download_model_files_distributed(self) -> None:
        self.enter("download")
        self.leave("download")

    def on_after_node_init(self) -> None:  # type: ignore[override]
        self.enter("after")
        self.ctx.custom_data["sync"] = "after"
        self.leave("after")


class NoInitNode(Recording):
    """``run_init_node = False``: Ray skips node initialization and the download hook."""

    async def on_before_node_init(self) -> None:
        self.enter("before")
        self.ctx.run_init_node = False
        self.leave("before")

    def on_before_download_model_files_distributed(self) -> None:
        self.enter("download")

    async def on_after_node_init(self) -> None:
        self.enter("after")
        self.leave("after")


class HookFailed(ValueError):
    """What the raising subjects raise."""


class RaisesIn(Recording):
    """Raises :class:`HookFailed` in the hook named by callback_kwargs ``fail_in``
    (``before``, ``download`` or ``after``), after changing ``custom_data``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("fail_in") not in ("before", "download", "after"):
            raise ValueError(
                f"RaisesIn needs callback_kwargs fail_in='before'|'download'|'after', "
                f"got {kwargs.get('fail_in')!r}"
            )

    def _step(self, hook: str) -> None:
        self.enter(hook)
        self.ctx.custom_data[hook] = "started"
        if self.kwargs["fail_in"] == hook:
            raise HookFailed(f"{hook} hook failed on purpose")
        self.leave(hook)

    async def on_before_node_init(self) -> None:
        self._step("before")

    def on_before_download_model_files_distributed(self) -> None:
        self._step("download")

    async def on_after_node_init(self) -> None:
        self._step("after")
