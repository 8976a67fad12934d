# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes are untyped.)
"""The engine's actors: creation, names, the call queue, and death.

Contract: an actor's constructor runs as its creation task and the actor holds that task's
resources until it dies. Its calls queue in submission order and run one at a time, each
once its argument objects are ready, on the actor's node with its GPUs. ``ray.kill``, the
death of its node and the removal of its placement group kill it: its running and queued
calls fail with Ray's ``ActorDiedError``, as do calls made later. Named actors live in a
namespace (the cluster's by default) and a live name cannot be taken twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ray.exceptions import ActorAlreadyExistsError, ActorDiedError, RayActorError

from pytest_raycallbacks.fake_ray.model import Actor, Task
from pytest_raycallbacks.fake_ray.resources import gpu_ids

from .core import EngineCore


class EngineActors(EngineCore):
    """Actors and their calls (see the module doc)."""

    def create_actor(
        self,
        *,
        cls: type,
        class_name: str,
        name: str | None,
        namespace: str | None,
        get_if_exists: bool,
        submit: Callable[[Actor], Task],
    ) -> tuple[Actor, bool]:
        """Create (or, with ``get_if_exists``, find) an actor; returns (actor, created)."""
        with self._lock:
            self.check_open()
            ns = namespace or self.namespace
            if name:
                existing = self._named_actors.get((ns, name))
                if existing is not None and existing.state != "DEAD":
                    if get_if_exists:
                        return existing, False
                    raise ActorAlreadyExistsError(
                        f"The name {name} (namespace={namespace}) is already taken. Please use "
                        "a different name or get the existing actor using "
                        f"ray.get_actor('{name}', namespace='{namespace}')"
                    )
            actor_id = self.ids.actor_id()
            placeholder = Actor(
                actor_id=actor_id,
                cls=cls,
                class_name=class_name,
                name=name,
                namespace=ns,
                creation=None,  # type: ignore[arg-type]
            )
            self.actors[actor_id] = placeholder
            if name:
                self._named_actors[(ns, name)] = placeholder
            placeholder.creation = submit(placeholder)
            return placeholder, True

    def actor_by_name(self, name: str, namespace: str | None) -> Actor | None:
        with self._lock:
            actor = self._named_actors.get((namespace or self.namespace, name))
            return actor if actor is not None and actor.state != "DEAD" else None

    def named_actors(self, all_namespaces: bool) -> list[Any]:
        with self._lock:
            alive = [(ns, n) for (ns, n), a in self._named_actors.items() if a.state != "DEAD"]
            if all_namespaces:
                return [{"name": n, "namespace": ns} for ns, n in alive]
            return [n for ns, n in alive if ns == self.namespace]

    def kill_actor(self, actor: Actor) -> None:
        with self._lock:
            if actor.state != "DEAD":
                self._kill_actor(actor, "The actor is dead because it was killed by `ray.kill`.")
                self._pump()

    def _kill_actor(self, actor: Actor, why: str) -> None:
        creation = actor.creation
        if creation.state == "RUNNING" or creation.node is not None:
            self._release(creation)
            creation.attempt += 1
            if creation.state == "RUNNING":
                creation.state = "FAILED"
        elif creation.state == "PENDING":
            self._finish_failed(creation, self._actor_died(actor, why))
        for task in self.tasks.values():
            if task.actor is actor and task.kind == "actor_method" and task.state == "RUNNING":
                task.attempt += 1
                self._finish_failed(task, self._actor_died(actor, why))
        actor.state = "DEAD"
        actor.death_message = why
        actor.worker_busy = False
        self._fail_actor_queue(actor, self._actor_died(actor, why))

    def _actor_died(self, actor: Actor, why: str) -> RayActorError:
        node = actor.creation.node if actor.creation is not None else None
        lines = [
            ActorDiedError.BASE_ERROR_MSG,
            f"\tclass_name: {actor.class_name}",
            f"\tactor_id: {actor.hex}",
            f"\tpid: {os.getpid()}",
        ]
        if actor.name:
            lines.append(f"\tname: {actor.name}")
        lines.append(f"\tnamespace: {actor.namespace}")
        if node is not None:
            lines.append(f"\tip: {node.ip}")
        lines.append(why)
        error = ActorDiedError()
        error.actor_id = actor.hex
        error.error_msg = "\n".join(lines)
        return error

    def _fail_actor_queue(self, actor: Actor, error: BaseException) -> None:
        while actor.queue:
            self._finish_failed(actor.queue.popleft(), error)

    def _kick_actor(self, actor: Actor) -> bool:
        if actor.state == "DEAD":
            self._fail_actor_queue(actor, self._actor_died(actor, actor.death_message))
            return False
        if actor.state != "ALIVE" or actor.worker_busy or not actor.queue:
            return bool(actor.queue)
        task = actor.queue[0]
        deps = self._deps_state(task)
        if deps is False:
            return True
        actor.queue.popleft()
        if deps is not True:
            self._finish_failed(task, deps)  # type: ignore[arg-type]
            return bool(actor.queue)
        creation = actor.creation
        task.node = creation.node
        task.ran_on = creation.node
        task.bundle = None
        task.gpu_alloc = list(creation.gpu_alloc)
        task.ran_gpu_ids = tuple(gpu_ids(task.gpu_alloc))
        task.group = creation.group
        task.state = "RUNNING"
        task.attempt += 1
        task.started_at = self.clock.now()
        assert creation.node is not None
        task.history.append(f"attempt {task.attempt} on {creation.node.name}")
        actor.worker_busy = True
        self._launch(task, task.attempt)
        return bool(actor.queue)
