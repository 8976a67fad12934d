"""A ``CallbackBase`` subclass written like Ray 2.60's own ``TestingCallback``
(``python/ray/llm/tests/common/callbacks/test_callback_base.py``): its constructor asserts a
``callback_kwargs`` key, ``on_before_node_init`` changes ``worker_node_download_model``,
``custom_data`` and ``run_init_node``, and ``on_after_node_init`` asserts them."""

from __future__ import annotations

from typing import Any

from ray.llm._internal.common.callbacks.base import CallbackBase
from ray.llm._internal.common.utils.download_utils import NodeModelDownloadable


class TestingCallback(CallbackBase):
    __test__ = False  # not a pytest test class

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        assert kwargs["kwargs_test_key"] == "kwargs_test_value"
        self.before_init_called = False
        self.after_init_called = False

    async def on_before_node_init(self) -> None:
        assert self.ctx.worker_node_download_model == NodeModelDownloadable.MODEL_AND_TOKENIZER
        self.ctx.worker_node_download_model = NodeModelDownloadable.NONE
        self.ctx.custom_data["ctx_test_key"] = "ctx_test_value"
        self.before_init_called = True
        self.ctx.run_init_node = False

    async def on_after_node_init(self) -> None:
        assert self.ctx.worker_node_download_model == NodeModelDownloadable.NONE
        assert self.ctx.custom_data["ctx_test_key"] == "ctx_test_value"
        assert self.ctx.run_init_node is False
        self.after_init_called = True
