"""A ``CallbackBase`` subclass whose constructor relies on what the test session's
``conftest.py`` set up: it builds in the test process, not in a fresh interpreter (or on a
replica)."""

from __future__ import annotations

from typing import Any

import session_state
from ray.llm._internal.common.callbacks.base import CallbackBase


class NeedsSession(CallbackBase):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not session_state.READY:
            raise RuntimeError(f"session_state.READY is not set (mode {kwargs['mode']!r})")
