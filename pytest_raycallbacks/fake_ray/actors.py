"""Actor handles of the fake cluster.

``A.remote(...)`` on the fake returns a :class:`FakeActorHandle`: an instance of
``ray.actor.ActorHandle`` (so type checks pass) whose methods (``h.m.remote(...)``,
``h.m.options(num_returns=2).remote(...)``) queue calls that run one at a time, in order,
on the actor's instance in this process, on the actor's node and with its GPUs. The
constructor runs first as the actor's creation task and holds the actor's resources until
the actor dies (``ray.kill``, node failure, removal of its placement group).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import ray
from ray.actor import ActorHandle

from .active import active_engine
from .errors import FakeRayUnsupported
from .refs import FakeObjectRef

if TYPE_CHECKING:
    from .engine import Engine
    from .model import Actor

_SUPPORTED_SPECIAL = ("__ray_ready__",)


class FakeActorMethod:
    """``handle.method``: ``.remote(*args, **kwargs)`` and ``.options(...)``."""

    def __init__(self, handle: FakeActorHandle, method: str, options: dict[str, Any]) -> None:
        self._handle = handle
        self._method = method
        self._options = options

    def options(self, **options: Any) -> FakeActorMethod:
        unknown = set(options) - {"num_returns", "name", "max_task_retries", "retry_exceptions"}
        if unknown:
            raise FakeRayUnsupported(f"actor method .options({', '.join(sorted(unknown))}=...)")
        return FakeActorMethod(self._handle, self._method, {**self._options, **options})

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        handle = self._handle
        engine, actor = handle._fake_engine, handle._fake_actor
        num_returns = self._options.get("num_returns", 1)
        if not isinstance(num_returns, int):
            raise FakeRayUnsupported("actor generator methods (num_returns='streaming')")
        task = engine.submit(
            kind="actor_method",
            function=getattr(actor.cls, self._method, None) or (lambda: True),
            function_name=f"{actor.cls.__module__}.{actor.class_name}.{self._method}",
            name=self._options.get("name") or f"{actor.class_name}.{self._method}",
            args=list(args),
            kwargs=dict(kwargs),
            options={"method": self._method, **self._options},
            resources={},
            strategy="ACTOR",
            num_returns=num_returns,
            actor=actor,
        )
        refs = [FakeObjectRef.of(oid) for oid in task.return_ids]
        return refs[0] if len(refs) == 1 else (refs or None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "Actor methods cannot be called directly. Instead of running "
            f"'object.{self._method}()', try 'object.{self._method}.remote()'."
        )


class FakeActorHandle(ActorHandle[Any]):
    """A handle to an actor of the fake cluster (see the module doc)."""

    def __init__(self, engine: Engine, actor: Actor) -> None:  # no super(): no core worker
        self._fake_engine = engine
        self._fake_actor = actor

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_fake_"):
            raise AttributeError(item)
        actor: Actor = self.__dict__["_fake_actor"]
        if item in _SUPPORTED_SPECIAL:
            return FakeActorMethod(self, item, {})
        if item.startswith("__"):
            raise AttributeError(item)
        member = inspect.getattr_static(actor.cls, item, None)
        if member is not None and callable(getattr(actor.cls, item)):
            return FakeActorMethod(self, item, {})
        raise AttributeError(f"'ActorHandle' object has no attribute '{item}'")

    @property
    def _ray_actor_id(self) -> Any:
        return ray.ActorID(self._fake_actor.actor_id)

    @property
    def _actor_id(self) -> Any:
        return self._ray_actor_id

    def __repr__(self) -> str:
        return f"Actor({self._fake_actor.class_name}, {self._fake_actor.hex})"

    def __hash__(self) -> int:
        return hash(self._fake_actor.actor_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeActorHandle) and other._fake_actor is self._fake_actor

    def __del__(self) -> None:
        pass

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (_rebuild_handle, (self._fake_actor.actor_id,))


def _rebuild_handle(actor_id: bytes) -> FakeActorHandle:
    engine = active_engine()
    return FakeActorHandle(engine, engine.actors[actor_id])


def handle_of(engine: Engine, handle: Any) -> Actor:
    """The engine's actor behind ``handle`` (refuses handles of real Ray actors)."""
    if isinstance(handle, FakeActorHandle) and handle._fake_engine is engine:
        return handle._fake_actor
    raise ValueError(
        f"{handle!r} is not an actor of this fake Ray cluster (it was created by real Ray or "
        "another fake cluster); create actors while the fake cluster is active"
    )
