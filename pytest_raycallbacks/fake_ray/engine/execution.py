# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes and cloudpickle are untyped.)
"""The engine's task execution: running task bodies and settling their outcome.

Contract: each run of a task body is a daemon thread of this process with the task's
context (:mod:`..context`): its node, placement group, GPU ids and environment
(``CUDA_VISIBLE_DEVICES``, runtime env ``env_vars``, node ``env``). An injected fault
(:mod:`..faults`) delays the body and/or raises instead of it. A body's exception becomes
Ray's ``RayTaskError`` (the fake's own frames left out of its traceback); tasks are retried
as Ray retries them (``max_retries``, ``retry_exceptions``). A run abandoned meanwhile (a
node died, the task was cancelled or its actor killed) has its result ignored.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import inspect
import os
import threading
import traceback
from pathlib import Path
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import (
    ActorDiedError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from pytest_raycallbacks.fake_ray import environ
from pytest_raycallbacks.fake_ray.context import CURRENT, TaskContext
from pytest_raycallbacks.fake_ray.introspection import DownloadRecord
from pytest_raycallbacks.fake_ray.model import Node, Task
from pytest_raycallbacks.fake_ray.refs import FakeObjectRef
from pytest_raycallbacks.fake_ray.resources import gpu_ids

from .core import EngineCore

#: The fake's own frames (the ``fake_ray`` package) are left out of task tracebacks.
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_NO_RESULT = object()


class EngineExecution(EngineCore):
    """Task bodies in threads, and what their outcome does (see the module doc)."""

    def _advance_due(self) -> None:
        now = self.clock.now()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, task, attempt = heapq.heappop(self._delayed)
            if task.state == "RUNNING" and task.attempt == attempt:
                self._launch(task, attempt)

    def _launch(self, task: Task, attempt: int) -> None:
        self._running += 1
        thread = threading.Thread(
            target=self._run_in_context,
            args=(task, attempt),
            name=f"fake-ray-{task.kind}-{task.name}",
            daemon=True,
        )
        thread.start()

    def _run_in_context(self, task: Task, attempt: int) -> None:
        contextvars.Context().run(self._run, task, attempt)

    def _task_env(self, task: Task, node: Node) -> dict[str, str]:
        env = dict(node.env)
        renv = task.runtime_env or {}
        env.update({str(k): str(v) for k, v in (renv.get("env_vars") or {}).items()})
        ids = gpu_ids(task.gpu_alloc)
        if ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
        return env

    def _run(self, task: Task, attempt: int) -> None:
        node = task.node
        try:
            assert node is not None
            CURRENT.set(TaskContext(self, task, node, task.actor))
            environ.OVERLAY.set(environ.encode(self._task_env(task, node)))
            outcome = self._call_body(task, node)
        except BaseException as exc:  # pragma: no cover - _call_body catches everything
            outcome = ("error", exc, _NO_RESULT)
        with self._lock:
            self._running -= 1
            self._complete(task, attempt, outcome)
            self._pump()

    def _call_body(self, task: Task, node: Node) -> tuple[str, Any, Any]:
        try:
            if self.serialize:
                args, kwargs = cloudpickle.loads(task.args[0])
            else:
                args, kwargs = task.args, task.kwargs
            args = tuple(self._arg_value(a) for a in args)
            kwargs = {k: self._arg_value(v) for k, v in kwargs.items()}
            if task.fault_error is not None:
                raise task.fault_error
            result = self._invoke(task, args, kwargs)
        except BaseException as exc:
            return ("error", self._task_error(task, node, exc), _NO_RESULT)
        try:
            values = self._split_returns(task, result)
            blobs = (
                [cloudpickle.dumps(v) for v in values] if self.serialize else [None] * len(values)
            )
        except BaseException as exc:
            return ("error", self._task_error(task, node, exc), _NO_RESULT)
        return ("ok", (values, blobs), result)

    def _invoke(self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = task.function
        if task.kind == "actor_method":
            assert task.actor is not None
            method = task.options["method"]
            if method == "__ray_ready__":
                return True
            fn = getattr(task.actor.instance, method)
        elif task.kind == "actor_creation":
            assert task.actor is not None
            instance = task.actor.cls(*args, **kwargs)
            return instance
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result

    def _arg_value(self, value: Any) -> Any:
        if isinstance(value, FakeObjectRef):
            entry = self.objects[value.binary()]
            return self._value_of(entry)
        return value

    def _split_returns(self, task: Task, result: Any) -> list[Any]:
        if task.kind == "actor_creation":
            return [None]
        if task.num_returns == 1:
            return [result]
        if task.num_returns == 0:
            return []
        values = list(result)
        if len(values) != task.num_returns:
            raise ValueError(
                f"Task returned {len(values)} objects, but num_returns={task.num_returns}."
            )
        return values

    def _task_error(self, task: Task, node: Node, exc: BaseException) -> BaseException:
        if not isinstance(exc, Exception):
            return WorkerCrashedError()
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        if not text.startswith("Traceback"):
            text = "Traceback (most recent call last):\n" + text
        name = task.name
        if task.kind == "actor_method" and task.actor is not None:
            name = f"{task.actor.class_name}.{task.options['method']}"
        return RayTaskError(
            function_name=task.function_name,
            traceback_str=text,
            cause=exc,
            proctitle=f"ray::{name}",
            pid=os.getpid(),
            ip=node.ip,
            actor_repr=None,
            actor_id=task.actor.hex if task.actor is not None else None,
        )

    def _complete(self, task: Task, attempt: int, outcome: tuple[str, Any, Any]) -> None:
        if task.attempt != attempt or task.state != "RUNNING":
            task.history.append(f"attempt {attempt} finished after it was abandoned; ignored")
            return
        status, payload, raw = outcome
        if task.kind == "actor_method" and task.actor is not None:
            task.actor.worker_busy = False
            self._actors_with_work.add(task.actor)
        if status == "error":
            error = payload
            if task.kind == "task" and self._should_retry(task, error):
                self._release(task)
                task.state = "PENDING"
                task.history.append(f"attempt {attempt} failed ({_short(error)}); retrying")
                self._pending_tasks.append(task)
                return
            if task.kind != "actor_creation" or task.actor is None:
                self._release(task)
            self._finish_failed(task, error)
            if task.kind == "actor_creation" and task.actor is not None:
                self._release(task)
                actor = task.actor
                actor.state = "DEAD"
                actor.death_message = (
                    "The actor died because of an error raised in its creation task"
                )
                self._fail_actor_queue(
                    actor, ActorDiedError(error) if isinstance(error, RayTaskError) else error
                )
            return
        values, blobs = payload
        if task.kind == "actor_creation" and task.actor is not None:
            actor = task.actor
            actor.instance = raw
            actor.state = "ALIVE"
            self._actors_with_work.add(actor)
        else:
            self._release(task)
        task.state = "FINISHED"
        task.finished_at = self.clock.now()
        for oid, value, blob in zip(task.return_ids, values, blobs, strict=True):
            self._resolve(self.objects[oid], value, blob)
        self._record_download(task, raw)

    def _should_retry(self, task: Task, error: BaseException) -> bool:
        if not isinstance(error, RayTaskError):
            return False
        allowed = task.retry_exceptions
        if allowed is False:
            return False
        if isinstance(allowed, tuple) and not isinstance(error.cause, allowed):
            return False
        task.failures += 1
        return task.max_retries < 0 or task.failures <= task.max_retries

    def _finish_failed(self, task: Task, error: BaseException) -> None:
        if task in self._pending_tasks:
            self._pending_tasks.remove(task)
        task.state = "FAILED"
        task.error = error
        task.finished_at = self.clock.now()
        for oid in task.return_ids:
            self._fail_object(self.objects[oid], error)

    def _abort_attempt(
        self, task: Task, error: BaseException | None, *, retry: bool, release: bool = True
    ) -> None:
        """Abandon a running attempt (its thread's result will be ignored)."""
        if release:
            self._release(task)
        else:
            task.node = None
            task.bundle = None
            task.released_cpu = 0
        task.attempt += 1  # the running thread's attempt is now stale
        if error is not None:
            task.failures += 1
        if retry and (error is None or task.max_retries < 0 or task.failures <= task.max_retries):
            task.state = "PENDING"
            task.history.append(
                f"attempt aborted ({_short(error) if error else 'killed'}); retrying"
            )
            self._pending_tasks.append(task)
        else:
            self._finish_failed(task, error or WorkerCrashedError())

    def _record_download(self, task: Task, result: Any) -> None:
        cls = type(result)
        if cls.__name__ != "NodeDownload" or not cls.__module__.startswith("reference_runner"):
            return
        node = task.ran_on
        self.downloads.append(
            DownloadRecord(
                node_id=node.node_id if node else getattr(result, "node_id", ""),
                node_name=node.name if node else "?",
                task_id=task.hex,
                downloadable=getattr(getattr(result, "downloadable", None), "name", "?"),
                path=str(getattr(result, "path", "")),
                files=tuple(getattr(result, "files", ())),
                copied=tuple(getattr(result, "copied", ())),
            )
        )

    def cancel(self, ref: Any, *, force: bool) -> None:
        with self._lock:
            entry = self.entry_of(ref)
            task = entry.task
            if task is None or task.state in ("FINISHED", "FAILED", "CANCELLED"):
                return
            if task.kind == "actor_method" and force:
                raise ValueError(
                    "force=True is not supported for actor tasks. Use ray.kill(actor) to "
                    "kill the actor instead."
                )
            error: BaseException = (
                WorkerCrashedError() if force else TaskCancelledError(ray.TaskID(task.task_id))
            )
            if task.state == "RUNNING":
                self._release(task)
                task.attempt += 1
            elif (
                task.kind == "actor_method" and task.actor is not None and task in task.actor.queue
            ):
                task.actor.queue.remove(task)
            self._finish_failed(task, error)
            task.state = "CANCELLED"
            task.history.append("cancelled" + (" (force)" if force else ""))
            self._pump()


def _short(error: BaseException | None) -> str:
    if error is None:
        return "-"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"
