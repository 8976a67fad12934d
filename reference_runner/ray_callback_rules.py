"""Former home of the ``CallbackBase`` rules; kept for the import paths it documented.

The rules a ``CallbackBase`` subclass must follow (ids, texts, why, fixes) are the
conformance catalogue's: the checks are in ``conformance.checks.callbackbase`` and the
functions that evaluate them (``loading_problems``, ``constructor_problems``,
``hook_problems``, ``shipping_problems``, ``error_problems``, ``run_problems``,
``static_problems``) in ``conformance.callbackbase_rules``. ``reference_runner`` cannot
re-export them (docs/design.md §Layers: it never imports ``conformance``).

What the runtime itself needs stays here as re-exports of its owner,
:mod:`reference_runner.ray_callback_ctx`: the ``ctx`` field validation the adapter enforces
after every hook, and the ``ctx_kwargs`` Ray builds ``CallbackCtx`` from.
"""

from __future__ import annotations

from .ray_callback_ctx import (
    ctx_field_problems,
    placement_group_problems,
    ray_ctx_kwargs,
    runtime_env_problems,
    unplaced_placement_group,
)

__all__ = [
    "ctx_field_problems",
    "placement_group_problems",
    "ray_ctx_kwargs",
    "runtime_env_problems",
    "unplaced_placement_group",
]
