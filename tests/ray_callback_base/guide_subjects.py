"""``CallbackBase`` subclasses written the way Ray Serve LLM's "Callbacks" guide writes them
(issue 17): options from ``self.kwargs``, Ray's ``LLMConfig`` in ``self.llm_config``, plain
and async hooks, and a hook that imports vLLM (the reasoning-parser example).

Each records what it saw in ``self.ctx.custom_data``, so a test can read it from the final
``ctx`` Ray's engine start left.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ray.llm._internal.common.callbacks.base import CallbackBase


class ReadsItsKwargs(CallbackBase):
    """The guide's first example: reads its callback_kwargs in on_before_node_init."""

    async def on_before_node_init(self) -> None:
        greeting = self.kwargs["greeting"]  # a KeyError when the deployment forgot it
        self.ctx.custom_data["greeting"] = greeting


class ReadsRaysLLMConfig(CallbackBase):
    """Reads what only Ray's LLMConfig has: model_loading_config, engine_kwargs,
    get_engine_config() (the guide's custom-model example)."""

    async def on_before_node_init(self) -> None:
        loading = self.llm_config.model_loading_config
        engine = self.llm_config.get_engine_config()
        self.ctx.custom_data.update(
            model_id=loading.model_id,
            model_source=str(loading.model_source),
            engine_kwargs=dict(self.llm_config.engine_kwargs),
            hf_model_id=engine.hf_model_id,
            num_devices=engine.num_devices,
            accelerator_type=self.llm_config.accelerator_type,
        )


class PlainDefEverywhere(CallbackBase):
    """Plain def node-init hooks (Ray's run_callback calls them inline) and an async
    download hook (Ray's run_callback_sync runs it with asyncio.run in the task)."""

    def on_before_node_init(self) -> None:  # type: ignore[override]
        self.ctx.custom_data["before"] = "sync"

    def on_after_node_init(self) -> None:  # type: ignore[override]
        self.ctx.custom_data["after"] = "sync"

    async def on_before_download_model_files_distributed(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)


class ImportsVllmReasoning(CallbackBase):
    """The guide's reasoning-parser example: imports vLLM in on_after_node_init."""

    async def on_after_node_init(self) -> None:
        from vllm.reasoning import ReasoningParserManager  # type: ignore[import-not-found]

        self.ctx.custom_data["parsers"] = list(ReasoningParserManager.reasoning_parsers)


class SkipsNodeInit(CallbackBase):
    """Turns Ray's initialize_node off: the download hook must never run."""

    async def on_before_node_init(self) -> None:
        self.ctx.run_init_node = False

    def on_before_download_model_files_distributed(self) -> None:
        raise AssertionError("Ray never calls this hook when run_init_node is False")


class SwallowedError(CallbackBase):
    """Raises in a hook; deployed with raise_error_on_callback: false."""

    async def on_before_node_init(self) -> None:
        raise RuntimeError("cache server unreachable")


class AwaitsForever(CallbackBase):
    async def on_before_node_init(self) -> None:
        await asyncio.sleep(3600)


#: Set by a test to let :class:`ReturnsLate`'s hook return; what ran after it.
RELEASE = threading.Event()
AFTER_RELEASE: list[str] = []


class ReturnsLate(CallbackBase):
    """Blocks in on_before_node_init until RELEASE is set (at most 10 s)."""

    def on_before_node_init(self) -> None:  # type: ignore[override]
        RELEASE.wait(10)

    def on_before_download_model_files_distributed(self) -> None:
        AFTER_RELEASE.append("download")

    async def on_after_node_init(self) -> None:
        AFTER_RELEASE.append("after")


class NeedsTheNetwork(CallbackBase):
    async def on_before_node_init(self) -> None:
        import socket

        socket.getaddrinfo("models.invalid", 443)


def summary(ctx: Any) -> dict[str, Any]:
    return dict(ctx.get("custom_data") or {})


class SuppliesItsOwnGroup(CallbackBase):
    """Puts a placed group of its own in ctx.placement_group (the engine's from then on)."""

    async def on_before_node_init(self) -> None:
        import ray

        group = ray.util.placement_group([{"GPU": 1}, {"GPU": 1}], strategy="STRICT_SPREAD")
        await group.ready()
        self.ctx.placement_group = group
