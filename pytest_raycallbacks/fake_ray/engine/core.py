# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes are untyped.)
"""The engine's core: the cluster's records, the lock, the pump and the waits.

Contract:

* Every record of the cluster (:mod:`..model`) hangs off the engine and changes only under
  :attr:`EngineCore.lock` (a re-entrant lock; ``_cond`` is its condition, notified after
  every change).
* :meth:`EngineCore._pump` runs after every change that could let something waiting
  proceed: it launches the task bodies whose injected delay is over, places pending groups
  in creation order, starts pending tasks in submission order, hands queued calls to idle
  actors, and wakes the waiters.
* :meth:`EngineCore.wait_for` never hangs: when nothing in the cluster runs and nothing is
  scheduled to start, a wait without timeout raises
  :class:`~..errors.FakeRayDeadlockError` naming what is missing, and a wait with a timeout
  jumps the clock to its end (``autojump``) instead of sleeping. A task that waits gives its
  CPUs back until it resumes, as Ray does while a task blocks in ``ray.get``/``ray.wait``.

The engine's other parts (:mod:`.nodes`, :mod:`.groups`, :mod:`.objects`,
:mod:`.scheduling`, :mod:`.execution`, :mod:`.actors`, :mod:`.describing`) are mixins over
this core. The methods one part calls on another are declared in the ``TYPE_CHECKING``
block of :class:`EngineCore`, so that every part type-checks on its own; at run time they
come from the parts.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ray.exceptions import RaySystemError

from pytest_raycallbacks.fake_ray.clock import VirtualClock
from pytest_raycallbacks.fake_ray.context import TaskContext, current
from pytest_raycallbacks.fake_ray.errors import FakeRayActivationError, FakeRayDeadlockError
from pytest_raycallbacks.fake_ray.faults import Fault
from pytest_raycallbacks.fake_ray.ids import IdFactory
from pytest_raycallbacks.fake_ray.introspection import CallRecord, DownloadRecord
from pytest_raycallbacks.fake_ray.model import Actor, Group, Node, ObjectEntry, Task
from pytest_raycallbacks.fake_ray.resources import Units
from pytest_raycallbacks.fake_ray.topology import NodeSpec


class EngineCore:
    """The records, lock, pump and waits of one fake cluster (see the module doc)."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        seed: int | str = 0,
        autojump: bool = True,
        serialize: bool = True,
        namespace: str | None = None,
        name: str = "fake",
    ) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.ids = IdFactory(seed)
        self.clock = VirtualClock()
        self.autojump = autojump
        self.serialize = serialize
        self.name = name
        self.address = f"fake-ray://{name}"
        self.namespace = namespace or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.address}/{seed}"))
        self._connected = True
        #: How many times the driver has connected; the n-th connection is job n, as in
        #: Ray, where every ``ray.init()`` after a ``ray.shutdown()`` starts a new job.
        self.connections = 1
        self.closed = False
        self._nodes: list[Node] = []
        self._by_id: dict[str, Node] = {}
        self._by_name: dict[str, Node] = {}
        self._alive: list[Node] = []
        self.groups: dict[bytes, Group] = {}
        self._group_names: dict[str, Group] = {}
        self.tasks: dict[bytes, Task] = {}
        self.objects: dict[bytes, ObjectEntry] = {}
        self.actors: dict[bytes, Actor] = {}
        self._named_actors: dict[tuple[str, str], Actor] = {}
        self._pending_groups: list[Group] = []
        self._pending_tasks: list[Task] = []
        self._actors_with_work: set[Actor] = set()
        self._running = 0
        self._waiters: list[Callable[[], bool]] = []
        self._delayed: list[tuple[float, int, Task, int]] = []
        self._seq = itertools.count()
        self._call_seq = itertools.count(1)
        self._spread_cursor = 0
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        self.downloads: list[DownloadRecord] = []
        self._pickled_functions: dict[int, Any] = {}
        for spec in specs:
            self._add_node(spec)
        if not any(n.is_head for n in self._nodes):
            raise ValueError("a fake cluster needs a head node")

    if TYPE_CHECKING:
        # What the parts call on one another (see the module doc).

        # .nodes
        def _add_node(self, spec: NodeSpec) -> Node: ...

        # .groups
        def _try_place_group(self, group: Group) -> bool: ...

        # .objects
        def _dumps(self, value: Any, what: str) -> bytes: ...
        def _resolve(self, entry: ObjectEntry, value: Any, blob: bytes | None = None) -> None: ...
        def _fail_object(self, entry: ObjectEntry, error: BaseException) -> None: ...
        def _value_of(self, entry: ObjectEntry) -> Any: ...
        def entry_of(self, ref: Any) -> ObjectEntry: ...

        # .scheduling
        def _deps_state(self, task: Task) -> BaseException | bool: ...
        def _try_start(self, task: Task) -> bool: ...
        def _release(self, task: Task) -> None: ...

        # .execution
        def _advance_due(self) -> None: ...
        def _launch(self, task: Task, attempt: int) -> None: ...
        def _finish_failed(self, task: Task, error: BaseException) -> None: ...
        def _abort_attempt(
            self, task: Task, error: BaseException | None, *, retry: bool, release: bool = True
        ) -> None: ...

        # .actors
        def _kill_actor(self, actor: Actor, why: str) -> None: ...
        def _fail_actor_queue(self, actor: Actor, error: BaseException) -> None: ...
        def _kick_actor(self, actor: Actor) -> bool: ...

        # .describing
        def _describe_objects(self, entries: Iterable[ObjectEntry]) -> str: ...
        def _describe_group(self, group: Group) -> str: ...

    # ------------------------------------------------------------------ basics

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def head(self) -> Node:
        return next(n for n in self._nodes if n.is_head)

    def log_call(
        self,
        api: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: BaseException | None,
        seq: int,
    ) -> None:
        ctx = current(self)
        record = CallRecord(
            seq=seq,
            api=api,
            args=args,
            kwargs=kwargs,
            thread=threading.current_thread().name,
            task_id=ctx.task.hex if ctx is not None else None,
            time=self.clock.now(),
            error=None if error is None else f"{type(error).__name__}: {error}",
        )
        with self._lock:
            self.calls.append(record)

    def next_call_seq(self) -> int:
        return next(self._call_seq)

    def check_open(self) -> None:
        if self.closed:
            raise FakeRayActivationError(
                f"the fake Ray cluster {self.name!r} is closed; objects and handles from it "
                "cannot be used any more"
            )

    @property
    def connected(self) -> bool:
        """Whether the driver is connected (``ray.is_initialized()``)."""
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        if value and not self._connected:
            self.connections += 1
        self._connected = value

    @property
    def job_id(self) -> str:
        """The driver's job id now: the hex of the connection number, little-endian."""
        return self.connections.to_bytes(4, "little").hex()

    def require_connected(self, api: str) -> None:
        if not self.connected:
            raise RaySystemError(
                "Ray has not been started yet. You can start Ray with 'ray.init()'."
            )

    def auto_init(self) -> None:
        """What Ray's ``auto_init_ray`` does: reconnect a driver that called shutdown."""
        self.connected = True

    # ------------------------------------------------------------------ pump

    def _pump(self) -> None:
        self._advance_due()
        if self._pending_groups:
            for group in list(self._pending_groups):
                self._try_place_group(group)
        if self._pending_tasks:
            for task in list(self._pending_tasks):
                self._try_start(task)
        if self._actors_with_work:
            for actor in list(self._actors_with_work):
                if not self._kick_actor(actor):
                    self._actors_with_work.discard(actor)
        self._cond.notify_all()

    # ------------------------------------------------------------------ waiting

    def wait_for(
        self, ready: Callable[[], bool], timeout: float | None, describe: Callable[[], str]
    ) -> bool:
        """Block until ``ready()`` (True), the timeout (False), or a deadlock (raises).

        See the module doc for how the clock jumps when nothing runs.
        """
        with self._lock:
            self._pump()
            if ready():
                return True
            if timeout is not None and timeout <= 0:
                return False
            deadline = None if timeout is None else self.clock.now() + timeout
            ctx = current(self)
            self._block(ctx)
            self._waiters.append(ready)
            try:
                while True:
                    self._pump()
                    if ready():
                        return True
                    now = self.clock.now()
                    if deadline is not None and now >= deadline:
                        return False
                    due = self._delayed[0][0] if self._delayed else None
                    wake: float | None
                    if self._running <= 0 and not self._someone_can_proceed(ready):
                        if due is not None and (deadline is None or due <= deadline):
                            if self.autojump:
                                self.clock.jump_to(due)
                                continue
                            wake = due
                        elif deadline is None:
                            raise FakeRayDeadlockError(
                                "ray would block forever here: nothing in the fake cluster is "
                                "running or scheduled that could make this wait succeed. "
                                + describe()
                            )
                        else:
                            if self.autojump:
                                self.clock.jump_to(deadline)
                                return False
                            wake = deadline
                    else:
                        wake = min((x for x in (deadline, due) if x is not None), default=None)
                    self._cond.wait(None if wake is None else max(0.0, wake - now) + 0.001)
            finally:
                self._waiters.remove(ready)
                self._unblock(ctx)

    def _someone_can_proceed(self, me: Callable[[], bool]) -> bool:
        """Is another waiter's condition met (it will run as soon as it gets the lock)?"""
        return any(w is not me and w() for w in self._waiters)

    def _block(self, ctx: TaskContext | None) -> None:
        if ctx is None:
            return
        ctx.blocked += 1
        if ctx.blocked != 1:
            return
        self._running -= 1
        task = ctx.task
        cpu = task.demand.get("CPU", 0)
        if cpu > 0 and task.state == "RUNNING" and task.kind == "task" and task.node is not None:
            self._pool_of(task)[0]["CPU"] = self._pool_of(task)[0].get("CPU", 0) + cpu
            task.released_cpu = cpu
        self._cond.notify_all()

    def _unblock(self, ctx: TaskContext | None) -> None:
        if ctx is None:
            return
        ctx.blocked -= 1
        if ctx.blocked != 0:
            return
        self._running += 1
        task = ctx.task
        if task.released_cpu and task.state == "RUNNING" and task.node is not None:
            pool = self._pool_of(task)[0]
            pool["CPU"] = pool.get("CPU", 0) - task.released_cpu
        task.released_cpu = 0

    def _pool_of(self, task: Task) -> tuple[Units, Any]:
        """Where a running task's resources come from: its bundle's, or its node's."""
        if task.bundle is not None:
            return task.bundle.avail, task.bundle.gpus
        assert task.node is not None
        return task.node.avail, task.node.gpus

    # ------------------------------------------------------------------ shutdown

    def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting work and give running task bodies ``grace_s`` real seconds."""
        with self._lock:
            self.closed = True
            deadline = time.monotonic() + grace_s
            while self._running > 0 and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
