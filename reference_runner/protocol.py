"""The callback protocol: any callable ``(phase, config, data) -> Optional[Mapping]``."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Callback(Protocol):
    """A generic initialization callback.

    Called as ``callback(phase, config, data)`` where ``phase`` is one of
    :data:`reference_runner.PHASES` (or a future phase, to be ignored), ``config`` is the
    :class:`~reference_runner.LLMConfig` and ``data`` is the shared, mutable dict. It returns
    ``None`` or a mapping with ``str`` keys that the runner merges into ``data``. It may be a
    coroutine function, in which case the runner awaits it.

    ``isinstance(obj, Callback)`` only tells that ``obj`` is callable; the conformance kit
    checks the rest.
    """

    def __call__(
        self, phase: str, config: Any, data: dict[str, Any]
    ) -> Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None: ...
