"""A ``CallbackBase`` callback written the way Ray Serve LLM's "Callbacks" guide writes them.

It reads its options from ``self.kwargs`` (Ray passes ``callback_config.callback_kwargs``
to the constructor), looks at Ray's ``LLMConfig`` (``self.llm_config``), and records what it
did in ``self.ctx.custom_data``. Deployed by ``serve.yaml`` beside it.
"""

from __future__ import annotations

import logging
import time

from ray.llm._internal.common.callbacks.base import CallbackBase

logger = logging.getLogger(__name__)


class WarmCacheCallback(CallbackBase):
    """Logs the model it initializes and the cache it would warm, and times the download."""

    async def on_before_node_init(self) -> None:
        cache_dir = self.kwargs.get("cache_dir", "/tmp/model-cache")
        model = self.llm_config.model_loading_config
        engine = self.llm_config.get_engine_config()
        logger.info(
            "warming %s for model %s (source %s, %d device(s))",
            cache_dir,
            model.model_id,
            model.model_source,
            engine.num_devices,
        )
        self.ctx.custom_data["cache_dir"] = cache_dir
        self.ctx.custom_data["init_started"] = time.time()

    async def on_after_node_init(self) -> None:
        started = self.ctx.custom_data.get("init_started", time.time())
        self.ctx.custom_data["init_s"] = time.time() - started
        logger.info("node initialized in %.2f s", self.ctx.custom_data["init_s"])

    def on_before_download_model_files_distributed(self) -> None:
        logger.info("downloading %s", self.ctx.worker_node_download_model)
