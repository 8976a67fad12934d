"""The fake cluster's in-memory state: nodes, placement groups, tasks, objects, actors.

Plain records, no behaviour beyond small derived properties; the engine
(:mod:`.engine`) owns and changes them under its lock. Resource quantities are in the
fixed-point units of :mod:`.resources`; times are on the cluster's clock (:mod:`.clock`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .resources import GpuAlloc, Units

GroupState = Literal["PENDING", "CREATED", "RESCHEDULING", "REMOVED"]
TaskState = Literal["PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]
TaskKind = Literal["task", "actor_creation", "actor_method"]
ActorState = Literal["PENDING_CREATION", "ALIVE", "DEAD"]

DRIVER: Final = "driver"


@dataclass(eq=False)
class Node:
    """One node; ``avail`` is what is neither held by tasks nor reserved by bundles."""

    index: int
    node_id: str
    name: str
    ip: str
    is_head: bool
    total: Units
    avail: Units
    gpus: list[int]
    gpu_capacity: list[int]
    labels: dict[str, str]
    env: dict[str, str]
    alive: bool = True
    death_reason: int = 0
    death_message: str = ""
    added_at: float = 0.0
    removed_at: float | None = None


@dataclass(eq=False)
class Bundle:
    """One bundle of a placement group; ``avail``/``gpus`` is what tasks in it may use."""

    index: int
    demand: Units
    spec: dict[str, float]
    selector: dict[str, str] | None = None
    node: Node | None = None
    last_node_id: str = ""
    gpu_alloc: GpuAlloc = field(default_factory=list)
    avail: Units = field(default_factory=dict)
    gpus: dict[int, int] = field(default_factory=dict)


@dataclass(eq=False)
class Group:
    """A placement group as the GCS keeps it."""

    id: bytes
    hex: str
    name: str
    strategy: str
    bundles: list[Bundle]
    lifetime: str | None
    soft_target_node_id: str | None
    creator: str
    created_at: float
    state: GroupState = "PENDING"
    scheduling_state: str = "QUEUED"
    scheduling_attempts: int = 0
    placed_at: float | None = None
    removed_at: float | None = None
    ever_created: bool = False
    ready_objects: list[bytes] = field(default_factory=list)

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        return [dict(b.spec) for b in self.bundles]


@dataclass(eq=False)
class Task:
    """A submitted task (or actor creation / actor method call) and its fate."""

    task_id: bytes
    kind: TaskKind
    function: Callable[..., Any]
    function_name: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    demand: Units
    strategy: str
    return_ids: list[bytes]
    num_returns: int
    max_retries: int = 0
    retry_exceptions: bool | tuple[type[BaseException], ...] = False
    group: Group | None = None
    bundle_index: int = -1
    capture_child_tasks: bool = False
    affinity_node_id: str | None = None
    affinity_soft: bool = False
    label_selector: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    deps: list[bytes] = field(default_factory=list)
    parent: Task | None = None
    actor: Actor | None = None
    placement_demand: Units | None = None
    state: TaskState = "PENDING"
    node: Node | None = None
    ran_on: Node | None = None
    ran_gpu_ids: tuple[int, ...] = ()
    bundle: Bundle | None = None
    gpu_alloc: GpuAlloc = field(default_factory=list)
    attempt: int = 0
    failures: int = 0
    submitted_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    body_starts_at: float | None = None
    fault_error: BaseException | None = None
    error: BaseException | None = None
    released_cpu: int = 0
    pending_reason: str = ""
    history: list[str] = field(default_factory=list)

    @property
    def hex(self) -> str:
        return self.task_id.hex()


@dataclass(eq=False)
class ObjectEntry:
    """An object in the fake object store: a put value, a task return, or a group's
    ``ready()`` object. ``blob`` is the pickled value; ``error`` what ``ray.get`` raises."""

    object_id: bytes
    kind: Literal["put", "task", "pg_ready"]
    ready: bool = False
    blob: bytes | None = None
    value: Any = None
    error: BaseException | None = None
    task: Task | None = None
    group: Group | None = None


@dataclass(eq=False)
class Actor:
    """An actor: its instance lives in this process, its calls run one at a time."""

    actor_id: bytes
    cls: type
    class_name: str
    name: str | None
    namespace: str
    creation: Task
    state: ActorState = "PENDING_CREATION"
    instance: Any = None
    death_message: str = ""
    queue: deque[Task] = field(default_factory=deque)
    worker_busy: bool = False

    @property
    def hex(self) -> str:
        return self.actor_id.hex()
