"""Example 3 of the source design: a lambda for quick modifications.

The phase name ``"pre_init"`` is kept exactly as the source wrote it. The runner never emits
it (the real phase is ``"pre_initialization"``), so this callback never sets its flag; the
conformance kit flags it with the closest real phase name.
"""

# Quick inline callback
quick_flag = lambda phase, config, data: {"custom_flag": True} if phase == "pre_init" else None  # noqa: E731

# config = LLMConfig(
#     model_id="meta-llama/Llama-2-7b",
#     callbacks=["examples.lambda_callback.quick_flag"]
# )
