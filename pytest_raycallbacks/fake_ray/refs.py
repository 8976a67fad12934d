"""Object refs of the fake cluster: real ``ray.ObjectRef`` instances, no core worker.

:class:`FakeObjectRef` subclasses ``ray.ObjectRef`` (so ``isinstance(ref, ray.ObjectRef)``
holds and ids print as Ray prints them) and is created with ``skip_adding_local_ref=True``,
so it never registers with a real Ray core worker, even when real Ray is connected in the
same process. The methods that would reach the core worker (``future``, ``await``,
``task_id`` ...) are answered by the active fake cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Generator
from typing import Any

import ray
from ray import ObjectRef

from .active import active_engine


class FakeObjectRef(ObjectRef):  # type: ignore[misc,type-arg]
    """A ref into the fake object store; pickles as its id."""

    @classmethod
    def of(cls, object_id: bytes) -> FakeObjectRef:
        return cls(object_id, skip_adding_local_ref=True)

    def __repr__(self) -> str:
        return f"ObjectRef({self.hex()})"

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (_rebuild, (self.binary(),))

    def task_id(self) -> Any:
        return ray.TaskID(self.binary()[:24])

    def job_id(self) -> Any:
        return ray.JobID(self.binary()[20:24])

    def owner_address(self) -> str:
        return ""

    def call_site(self) -> str:
        return ""

    def future(self) -> concurrent.futures.Future[Any]:
        """A future resolved (in a helper thread) with what ``ray.get`` returns."""
        engine = active_engine()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def resolve() -> None:
            try:
                fut.set_result(engine.get([self], None)[0])
            except BaseException as exc:
                fut.set_exception(exc)

        threading.Thread(
            target=resolve, name=f"fake-ray-future-{self.hex()[:8]}", daemon=True
        ).start()
        return fut

    def as_future(self, _internal: bool = False) -> asyncio.Future[Any]:
        return asyncio.wrap_future(self.future())

    def __await__(self) -> Generator[Any, None, Any]:
        return self.as_future().__await__()

    def _on_completed(self, py_callback: Any) -> None:
        self.future().add_done_callback(
            lambda f: py_callback(f.exception() if f.exception() is not None else f.result())
        )


def _rebuild(object_id: bytes) -> FakeObjectRef:
    return FakeObjectRef.of(object_id)
