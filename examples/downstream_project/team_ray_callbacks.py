"""The team's Ray ``CallbackBase`` callback, deployed through a Serve config's
``callback_config``."""

from __future__ import annotations

from ray.llm._internal.common.callbacks.base import CallbackBase


class WarmCache(CallbackBase):
    """Marks the model it warmed for, from its callback_kwargs and Ray's LLMConfig."""

    async def on_before_node_init(self) -> None:
        model = self.llm_config.model_loading_config.model_id
        self.ctx.custom_data["warmed"] = f"{self.kwargs['bucket']}/{model}"
