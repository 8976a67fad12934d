"""Example 2 of the source design: a class-based (stateful) callback."""

from typing import Any, Dict, Optional

from reference_runner import NodeModelDownloadable


class CustomInitializationCallback:
    """Stateful callback that can track initialization progress."""

    def __init__(self, device_type: str = "cuda"):
        self.device_type = device_type
        self.start_time = None

    def __call__(
        self,
        phase: str,
        config: Any,
        data: Dict[str, Any]
    ) -> Optional[Dict[str, Any]]:
        """Handle different phases."""

        if phase == "pre_initialization":
            import time
            self.start_time = time.time()
            print(f"Initializing with device: {self.device_type}")

            # Modify initialization behavior
            return {
                "local_node_download_model": NodeModelDownloadable.MODEL_AND_TOKENIZER,
                "custom_device": self.device_type,
            }

        elif phase == "post_download":
            # Access shared data from previous phases
            download_result = data.get("download_result")
            print(f"Model downloaded: {download_result}")

        elif phase == "pre_engine_init":
            # Inject custom engine parameters
            return {
                "extra_init_kwargs": {
                    "device": self.device_type,
                    "custom_param": "value",
                }
            }

        elif phase == "post_initialization":
            import time
            elapsed = time.time() - self.start_time
            print(f"Initialization took {elapsed:.2f}s")


# Usage - instantiate and pass:
callback_instance = CustomInitializationCallback(device_type="cuda")

# config = LLMConfig(
#     model_id="meta-llama/Llama-2-7b",
#     callbacks=[callback_instance]
# )
# or by path (the class is instantiated with no arguments):
#     callbacks=["examples.stateful_callback:CustomInitializationCallback"]
