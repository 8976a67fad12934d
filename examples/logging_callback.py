"""Example 1 of the source design: a simple function callback."""

from typing import Any, Dict


def log_initialization(phase: str, config: Any, data: Dict[str, Any]) -> None:
    """Log each phase of initialization."""
    if phase.startswith("pre_"):
        print(f"Starting: {phase}")
    elif phase.startswith("post_"):
        print(f"Completed: {phase}")


# Usage:
# config = LLMConfig(
#     model_id="meta-llama/Llama-2-7b",
#     callbacks=["examples.logging_callback.log_initialization"]
# )
