"""A CallbackBase class as Ray's guide writes one: options from self.kwargs (with a
default), Ray's LLMConfig, plain def hooks (Ray calls them inline), the runtime env Ray
gives the workers extended through self.ctx."""

from ray.llm._internal.common.callbacks.base import CallbackBase

SPEC = "good_cb_guide_style:TuneWorkers"


class TuneWorkers(CallbackBase):
    def on_before_node_init(self) -> None:
        env = self.ctx.runtime_env.setdefault("env_vars", {})
        env["VLLM_LOGGING_LEVEL"] = self.kwargs.get("log_level", "INFO")
        self.ctx.custom_data["model"] = self.llm_config.model_loading_config.model_id

    def on_after_node_init(self) -> None:
        self.ctx.custom_data["ready"] = True
