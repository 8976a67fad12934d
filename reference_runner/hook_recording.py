"""Calling one ``CallbackBase`` hook the way Ray does, while recording what it did.

:class:`HookRecorder` stands in for a hook (as an instance attribute) while Ray's own
``run_callback``/``run_callback_sync`` calls it, and records what the hook returned or
raised; :func:`in_daemon_thread` runs a blocking call in a daemon thread with no event loop
(as in a Ray task) and awaits it. Used by
:class:`reference_runner.ray_callback_base.CallbackBaseAdapter`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from typing import Any


class HookRecorder:
    """Stands in for a hook as an instance attribute while Ray's ``run_callback`` calls
    it: records what the hook returned or raised, keeping Ray's sync/async verdict."""

    def __init__(self, instance: Any, name: str) -> None:
        self.instance = instance
        self.name = name
        self.original = getattr(instance, name)
        self.awaited = inspect.iscoroutinefunction(self.original)
        self.returned: Any = None
        self.raised: BaseException | None = None

    def __enter__(self) -> HookRecorder:
        original = self.original

        if self.awaited:

            async def hook() -> Any:
                try:
                    self.returned = await original()
                except BaseException as exc:
                    self.raised = exc
                    raise
                return self.returned

        else:

            def hook() -> Any:  # type: ignore[misc]
                try:
                    self.returned = original()
                except BaseException as exc:
                    self.raised = exc
                    raise
                if inspect.iscoroutine(self.returned):
                    self.returned.close()  # Ray drops it unawaited; close to avoid a warning
                return self.returned

        vars(self.instance)[self.name] = hook
        return self

    def __exit__(self, *exc_info: object) -> None:
        vars(self.instance).pop(self.name, None)


async def in_daemon_thread(fn: Callable[[], Any], name: str) -> Any:
    """Run ``fn`` in a daemon thread (no event loop there) and await its outcome; a thread
    that never returns cannot hold up interpreter exit."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name=f"reference_runner:{name}", daemon=True).start()
    return await asyncio.wrap_future(future)


__all__ = ["HookRecorder", "in_daemon_thread"]
