"""Who is calling: the driver or a task/actor of the fake cluster, and on which node.

:data:`CURRENT` holds the :class:`TaskContext` of the task (or actor call) a thread runs
for; it is ``None`` in the driver (the test, its callbacks and their threads). It is a
context variable, so ``asyncio`` code and ``asyncio.to_thread`` inside a task still see
their task. :class:`FakeRuntimeContext` is what ``ray.get_runtime_context()`` returns.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import FakeRayUnsupported
from .resources import from_units, gpu_ids

if TYPE_CHECKING:
    from .engine.core import EngineCore
    from .model import Actor, Node, Task

_ACCELERATOR_KINDS = (
    "GPU",
    "TPU",
    "NPU",
    "HPU",
    "neuron_cores",
    "RBLN",
    "FURIOSA",
    "MBLT",
    "TTNPU",
)


@dataclass(eq=False)
class TaskContext:
    """The task a thread runs for; ``blocked`` counts its threads waiting on the fake."""

    engine: EngineCore
    task: Task
    node: Node
    actor: Actor | None = None
    blocked: int = 0


CURRENT: ContextVar[TaskContext | None] = ContextVar("fake_ray_current_task", default=None)


def current(engine: EngineCore) -> TaskContext | None:
    """The calling task's context, if it belongs to ``engine``."""
    ctx = CURRENT.get()
    return ctx if ctx is not None and ctx.engine is engine else None


def current_node(engine: EngineCore) -> Node:
    """The node the caller runs on (the head node for the driver)."""
    ctx = current(engine)
    return ctx.node if ctx is not None else engine.head


class FakeRuntimeContext:
    """``ray.get_runtime_context()`` of the fake: ids and resources of the caller.

    Methods Ray only allows in a worker behave as in Ray when called from the driver
    (``get_assigned_resources`` raises ``AssertionError``; ``get_task_id`` returns
    ``None``). Anything not modelled raises :class:`FakeRayUnsupported`.
    """

    def __init__(self, engine: EngineCore) -> None:
        self._engine = engine

    def _ctx(self) -> TaskContext | None:
        return current(self._engine)

    def get_node_id(self) -> str:
        return current_node(self._engine).node_id

    def get_job_id(self) -> str:
        """The driver's job: ``01000000`` for its first connection, a new one after each
        ``ray.shutdown()`` and reconnection (as Ray numbers jobs)."""
        return self._engine.job_id

    def get_worker_id(self) -> str:
        ctx = self._ctx()
        return ctx.task.hex[:16] + "ff" * 20 if ctx is not None else "01000000" + "ff" * 24

    def get_task_id(self) -> str | None:
        ctx = self._ctx()
        return ctx.task.hex if ctx is not None else None

    def get_task_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.task.name if ctx is not None else None

    def get_task_function_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.task.function_name if ctx is not None else None

    def get_actor_id(self) -> str | None:
        ctx = self._ctx()
        return ctx.actor.hex if ctx is not None and ctx.actor is not None else None

    def get_actor_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.actor.name if ctx is not None and ctx.actor is not None else None

    def get_placement_group_id(self) -> str | None:
        ctx = self._ctx()
        if ctx is None or ctx.task.group is None:
            return None
        return ctx.task.group.hex

    @property
    def current_placement_group_id(self) -> str | None:
        return self.get_placement_group_id()

    def get_assigned_resources(self) -> dict[str, float]:
        ctx = self._ctx()
        if ctx is None:
            raise AssertionError(
                "This method is only available when the process is a                 "
                "worker. Current mode: 0"
            )
        return from_units({k: v for k, v in ctx.task.demand.items() if v > 0})

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        ctx = self._ctx()
        ids = [str(i) for i in gpu_ids(ctx.task.gpu_alloc)] if ctx is not None else []
        return {kind: (ids if kind == "GPU" else []) for kind in _ACCELERATOR_KINDS}

    def get_node_labels(self) -> dict[str, str]:
        return dict(current_node(self._engine).labels)

    def get_runtime_env_string(self) -> str:
        import json

        ctx = self._ctx()
        env = ctx.task.runtime_env if ctx is not None else None
        return json.dumps(dict(env or {}))

    @property
    def runtime_env(self) -> dict[str, Any]:
        ctx = self._ctx()
        return dict(ctx.task.runtime_env or {}) if ctx is not None else {}

    @property
    def namespace(self) -> str:
        return self._engine.namespace

    @property
    def gcs_address(self) -> str:
        return self._engine.address

    @property
    def node_id(self) -> Any:
        import ray

        return ray.NodeID.from_hex(self.get_node_id())

    @property
    def job_id(self) -> Any:
        import ray

        return ray.JobID.from_hex(self.get_job_id())

    @property
    def worker(self) -> Any:
        """The calling worker, as far as Ray's own logging filter reads it: ``mode`` is
        ``ray.WORKER_MODE`` inside a fake task or actor and ``ray.SCRIPT_MODE`` in the
        driver (Ray's ``CoreContextFilter`` reads it on every log line of Ray's loggers)."""
        import types

        import ray

        mode = ray.WORKER_MODE if self._ctx() is not None else ray.SCRIPT_MODE
        return types.SimpleNamespace(mode=mode)

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return False

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        ctx = self._ctx()
        return bool(ctx is not None and ctx.task.capture_child_tasks)

    def get(self) -> dict[str, Any]:
        ctx = self._ctx()
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "node_id": self.node_id,
            "namespace": self.namespace,
        }
        if ctx is not None:
            out["task_id"] = ctx.task.hex
        return out

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise FakeRayUnsupported(f"ray.get_runtime_context().{name}")
