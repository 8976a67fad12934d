"""Breaks process.environment: a CallbackBase hook picks the attention backend through
os.environ (the engine's workers never see it; self.ctx.runtime_env reaches them)."""

import os

from ray.llm._internal.common.callbacks.base import CallbackBase

BREAKS = "process.environment"
SPEC = "bad_cb_sets_environ:AttentionBackend"


class AttentionBackend(CallbackBase):
    async def on_before_node_init(self) -> None:
        os.environ["VLLM_ATTENTION_BACKEND"] = "FLASHINFER"
