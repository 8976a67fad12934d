"""``CallbackBase`` subclasses, good and broken, for the adapter and rule tests.

They pick download choices with ``type(self.ctx.worker_node_download_model)[NAME]``, the
enum Ray put in ``ctx`` (Ray's own where it imports, else the reference one), as a
deployment would with ``ray.llm._internal.common.utils.download_utils``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ray.llm._internal.common.callbacks.base import CallbackBase

from reference_runner.ray_callback_ctx import unplaced_placement_group


def choice(ctx: Any, name: str) -> Any:
    return type(ctx.worker_node_download_model)[name]


class GoodCallback(CallbackBase):
    """Tokenizer-only workers, an env var, custom data, and a record of its calls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[str] = []

    async def on_before_node_init(self) -> None:
        await asyncio.sleep(0)
        self.seen.append("before")
        self.ctx.worker_node_download_model = choice(self.ctx, "TOKENIZER_ONLY")
        env = dict(self.ctx.runtime_env or {})
        env["env_vars"] = {**env.get("env_vars", {}), "GOOD": "1"}
        self.ctx.runtime_env = env
        self.ctx.custom_data["marker"] = self.kwargs.get("marker", "none")

    def on_before_download_model_files_distributed(self) -> None:
        self.seen.append("download")  # on the shipped copy: stays there

    async def on_after_node_init(self) -> None:
        self.seen.append("after")
        self.ctx.custom_data["after"] = True


class OwnGroupCallback(CallbackBase):
    """Supplies its own placement group before node init."""

    async def on_before_node_init(self) -> None:
        self.ctx.placement_group = unplaced_placement_group()


class NoInitNodeCallback(CallbackBase):
    """Turns node initialization off (no model download at node init)."""

    async def on_before_node_init(self) -> None:
        self.ctx.run_init_node = False

    def on_before_download_model_files_distributed(self) -> None:
        raise AssertionError("Ray never calls this hook when run_init_node is False")


class ReadsWhatOthersSet(CallbackBase):
    """Copies what data held (through ctx) into custom_data at the end."""

    async def on_after_node_init(self) -> None:
        self.ctx.custom_data["saw_group"] = self.ctx.placement_group is not None
        self.ctx.custom_data["saw_choice"] = self.ctx.worker_node_download_model.name


# ---------------------------------------------------------------------- broken


class WrongCtxType(CallbackBase):
    """Sets the download choice as a string: Ray compares with its enum."""

    async def on_before_node_init(self) -> None:
        self.ctx.worker_node_download_model = "TOKENIZER_ONLY"


class GroupIdInsteadOfGroup(CallbackBase):
    async def on_before_node_init(self) -> None:
        self.ctx.placement_group = "pg-0123"


class BadRuntimeEnv(CallbackBase):
    async def on_after_node_init(self) -> None:
        self.ctx.runtime_env = {"env_vars": {"WORKERS": 4}}


class ReplacesCtx(CallbackBase):
    async def on_before_node_init(self) -> None:
        self.ctx = {"placement_group": None}  # type: ignore[assignment]


class SyncAwaitedHook(CallbackBase):
    """Plain def where Ray awaits: works, but blocks the replica's event loop."""

    def on_before_node_init(self) -> None:  # type: ignore[override]
        self.ctx.custom_data["sync"] = True


class ReturnsCoroutine(CallbackBase):
    """Plain def returning a coroutine: Ray never awaits it, so nothing happens."""

    def on_after_node_init(self) -> Any:  # type: ignore[override]
        return self._later()

    async def _later(self) -> None:
        self.ctx.custom_data["later"] = True


class AsyncDownloadHook(CallbackBase):
    async def on_before_download_model_files_distributed(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)


class RaisingHook(CallbackBase):
    async def on_before_node_init(self) -> None:
        self.ctx.custom_data["half"] = True
        raise ValueError("boom")


class Abort(BaseException):
    pass


class RaisesBaseException(CallbackBase):
    async def on_before_node_init(self) -> None:
        raise Abort("stop")


class TwoArgError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


class RaisesUnpicklableError(CallbackBase):
    async def on_after_node_init(self) -> None:
        raise TwoArgError(7, "no")


class DifferentSignature(CallbackBase):
    """Takes the config positionally under another name: Ray passes keywords."""

    def __init__(self, config: Any, ctx_kwargs: Any = None) -> None:
        super().__init__(config, ctx_kwargs=ctx_kwargs)


class NoSuperInit(CallbackBase):
    def __init__(self, **kwargs: Any) -> None:
        self.options = kwargs


class NeedsOption(CallbackBase):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if "bucket" not in self.kwargs:
            raise ValueError("NeedsOption requires callback_kwargs['bucket']")


class MisspeltHook(CallbackBase):
    async def on_before_node_initialize(self) -> None:
        pass

    async def on_after_init(self) -> None:
        pass


class TakesArgument(CallbackBase):
    async def on_after_node_init(self, ready: bool) -> None:  # type: ignore[override]
        pass


class OverridesDispatch(CallbackBase):
    async def run_callback(self, method_name: str) -> None:
        await getattr(self, method_name)()


class Unpicklable(CallbackBase):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.Lock()


class DownloadHookChangesCtx(CallbackBase):
    def on_before_download_model_files_distributed(self) -> None:
        self.ctx.worker_node_download_model = choice(self.ctx, "NONE")


class ReturnsValue(CallbackBase):
    async def on_before_node_init(self) -> Any:
        return {"placement_group": None}


class RemovesGroup(CallbackBase):
    async def on_after_node_init(self) -> None:
        self.ctx.placement_group = None


class Outer:
    class Inner(CallbackBase):
        pass


class NotACallbackBase:
    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> None:
        return None


class BlocksLoop(CallbackBase):
    """A plain def where Ray awaits, that blocks."""

    def on_before_node_init(self) -> None:  # type: ignore[override]
        import time

        time.sleep(2)


class SlowAsyncHook(CallbackBase):
    async def on_after_node_init(self) -> None:
        await asyncio.sleep(5)
