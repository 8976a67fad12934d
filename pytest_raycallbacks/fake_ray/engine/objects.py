# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes and cloudpickle are untyped.)
"""The engine's object store: ``ray.put`` values, task returns, ``ray.get`` and ``ray.wait``.

Contract: values go through cloudpickle as in Ray (``serialize=False`` keeps the object
itself); an object is either pending, ready with a value, or ready with the error
``ray.get`` raises (a ``RayTaskError`` is raised as an instance of both it and its cause's
type). Refs that are not this cluster's are refused with a message saying so. ``get`` and
``wait`` block through :meth:`~.core.EngineCore.wait_for`, so they never hang.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray
from ray import cloudpickle
from ray._common.serialization import pickle_dumps
from ray.exceptions import GetTimeoutError, RayTaskError

from pytest_raycallbacks.fake_ray.ids import object_id
from pytest_raycallbacks.fake_ray.model import ObjectEntry
from pytest_raycallbacks.fake_ray.refs import FakeObjectRef

from .core import EngineCore


class EngineObjects(EngineCore):
    """The in-memory object store (see the module doc)."""

    def _dumps(self, value: Any, what: str) -> bytes:
        data: bytes = pickle_dumps(value, what)
        return data

    def _resolve(self, entry: ObjectEntry, value: Any, blob: bytes | None = None) -> None:
        entry.ready = True
        if self.serialize:
            entry.blob = blob if blob is not None else cloudpickle.dumps(value)
        else:
            entry.value = value
        self._cond.notify_all()

    def _fail_object(self, entry: ObjectEntry, error: BaseException) -> None:
        entry.ready = True
        entry.error = error
        self._cond.notify_all()

    def _value_of(self, entry: ObjectEntry) -> Any:
        if entry.blob is not None:
            return cloudpickle.loads(entry.blob)
        return entry.value

    def put(self, value: Any) -> FakeObjectRef:
        if isinstance(value, ray.ObjectRef):
            raise TypeError(
                "Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do "
                "this, you can wrap the ray.ObjectRef in a list and call 'put' on it."
            )
        blob = (
            self._dumps(value, f"Could not serialize the put value {value!r}")
            if self.serialize
            else None
        )
        with self._lock:
            self.check_open()
            oid = object_id(self.ids.put_task_id(), 1)
            entry = ObjectEntry(object_id=oid, kind="put")
            self.objects[oid] = entry
            self._resolve(entry, value, blob)
            return FakeObjectRef.of(oid)

    def entry_of(self, ref: Any) -> ObjectEntry:
        entry = self.objects.get(ref.binary()) if isinstance(ref, FakeObjectRef) else None
        if entry is None:
            raise ValueError(
                f"{ref!r} is not an object of this fake Ray cluster: it was made by real Ray "
                "(or by another fake cluster). Objects cannot cross between a real cluster "
                "and the fake one; create it while the fake cluster is active."
            )
        return entry

    def get(self, refs: Sequence[Any], timeout: float | None) -> list[Any]:
        with self._lock:
            entries = [self.entry_of(r) for r in refs]
            ok = self.wait_for(
                lambda: all(e.ready for e in entries),
                timeout,
                lambda: self._describe_objects(entries),
            )
            if not ok:
                raise GetTimeoutError("Get timed out: some object(s) not ready.")
            values = []
            for entry in entries:
                if entry.error is not None:
                    error = entry.error
                    if isinstance(error, RayTaskError):
                        raise error.as_instanceof_cause()
                    raise error
                values.append(self._value_of(entry))
            return values

    def wait(
        self, refs: Sequence[Any], num_returns: int, timeout: float | None
    ) -> tuple[list[Any], list[Any]]:
        with self._lock:
            entries = [self.entry_of(r) for r in refs]
            self.wait_for(
                lambda: sum(e.ready for e in entries) >= num_returns,
                timeout,
                lambda: self._describe_objects([e for e in entries if not e.ready]),
            )
            ready: list[Any] = []
            not_ready: list[Any] = []
            for ref, entry in zip(refs, entries, strict=True):
                (ready if entry.ready and len(ready) < num_returns else not_ready).append(ref)
            return ready, not_ready
