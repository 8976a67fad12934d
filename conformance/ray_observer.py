"""Watching Ray's engine start: one recorded call per step, the process put back after each.

:class:`StepRecorder` is the :class:`reference_runner.ray_replica.StepObserver` the kit hands
to the replica: around each step of Ray's engine start (Ray's ``get_or_create_callback()``,
each hook Ray's ``run_callback`` dispatches, Ray's ``initialize_node`` with the download
hook inside its tasks) it records a :class:`~conformance.recorder.Call` (``phase`` is the
step's name) holding ``ctx`` before and after (as
:func:`~reference_runner.ray_replica.describe_ctx` gives it), the error the step raised,
its duration, what it changed in the process (put back at once, as for every other callback:
:mod:`conformance.process_state`), the modules it imported, and the errors Ray's
``run_callback`` *logged* instead of raising (``raise_error_on_callback: false``). It only
watches: Ray's code does the work.

It travels into the replica's task and back (Ray pickles it both ways), so what it holds is
plain data. A start that never ends does not come back: on a cluster in this process (the
fake) the steps begun so far are also kept under the recorder's token (:func:`progress`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Final

from reference_runner.ray_replica import CONSTRUCT, annotate_chain, describe_ctx

from .process_state import changes, restore, snapshot
from .recorder import Call

#: The logger of Ray's ``CallbackBase`` (``_handle_callback_error`` logs there).
RAY_CALLBACK_LOGGER: Final = "ray.llm._internal.common.callbacks.base"
_LOGGED_PREFIX: Final = "Error running callback method"

_PROGRESS: dict[str, list[str]] = {}
_ABANDONED: set[str] = set()
_PROGRESS_LOCK = threading.Lock()


class StartAbandoned(BaseException):
    """Raised at a step's start in a replica the kit gave up on (it overran its bound): the
    stuck hook returned at last, and no more of Ray's code runs in this process for it."""


def abandon(token: str) -> None:
    """Give up on the start of the recorder with ``token``: its next step raises
    :class:`StartAbandoned` instead of running (a cluster in this process cannot kill the
    replica's thread, so this keeps a late hook from driving Ray's later steps)."""
    with _PROGRESS_LOCK:
        _ABANDONED.add(token)


def progress(token: str) -> list[str]:
    """The steps begun so far by the recorder with ``token`` in this process, with
    ``"... (unfinished)"`` on one still running."""
    with _PROGRESS_LOCK:
        return list(_PROGRESS.get(token, ()))


def forget(token: str) -> None:
    """Drop what is kept for ``token`` (its progress; an abandoned start stays abandoned)."""
    with _PROGRESS_LOCK:
        _PROGRESS.pop(token, None)


class _LoggedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            return
        if text.startswith(_LOGGED_PREFIX):
            self.messages.append(text)


class StepTimeoutError(TimeoutError):
    """A step of Ray's engine start (a hook that awaits) overran the per-call timeout: the kit
    cancelled it, as the reference runner bounds each callback call."""


class StepRecorder:
    """Records each step of Ray's engine start (see the module docstring).

    ``step_timeout_s`` bounds each step that awaits (``asyncio.wait_for``: an async hook,
    Ray's ``initialize_node`` waiting for its tasks); a step that blocks the event loop (a
    plain ``def`` hook, the constructor) is bounded by the whole start's bound instead.
    """

    def __init__(self, step_timeout_s: float | None = None) -> None:
        self.step_timeout_s = step_timeout_s
        self.token = uuid.uuid4().hex
        self.calls: list[Call] = []
        #: ``(step, message)`` for each error Ray's ``run_callback`` logged and swallowed.
        self.logged: list[tuple[str, str]] = []
        #: ``(step, problem)`` for each ``ctx`` field that holds what Ray cannot use after
        #: the step (:func:`reference_runner.ray_callback_ctx.ctx_field_problems`).
        self.ctx_problems: list[tuple[str, str]] = []
        #: ``(step, warning)`` for each coroutine dropped unawaited during a step (a plain
        #: ``def`` hook that returned one: Ray's ``run_callback`` never awaits it).
        self.unawaited: list[tuple[str, str]] = []

    async def step(self, name: str, action: Callable[[], Awaitable[Any]], callback: Any) -> Any:
        with _PROGRESS_LOCK:
            if self.token in _ABANDONED:
                raise StartAbandoned(f"the kit gave up on this start before {name}")
        before = describe_ctx(callback.ctx) if callback is not None else {}
        call = Call(
            phase=name,
            known=True,
            before=before,
            inner={},
            config_before={},
            started=time.perf_counter(),
            _state=snapshot(),
            _modules_before=frozenset(sys.modules.copy()),
        )
        self.calls.append(call)
        self._progress(f"{name} (unfinished)")
        handler = _LoggedErrors()
        logger = logging.getLogger(RAY_CALLBACK_LOGGER)
        logger.addHandler(handler)
        # A plain-def hook that returns a coroutine: Ray's run_callback drops it unawaited, and
        # Python says so with a RuntimeWarning the moment it is dropped (inside the step).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                result = await self._bounded(name, action)
            except BaseException as exc:
                self._finish(call, callback, error=exc)
                raise
            finally:
                logger.removeHandler(handler)
                self.logged.extend((name, message) for message in handler.messages)
                self._unawaited(name, caught)
        self._finish(call, result if name == CONSTRUCT else callback)
        return result

    def _finish(self, call: Call, callback: Any, *, error: BaseException | None = None) -> None:
        call.duration_s = time.perf_counter() - call.started
        call.error = annotate_chain(error) if error is not None else None
        ctx = getattr(callback, "ctx", None)
        call.after = describe_ctx(ctx) if ctx is not None else None
        if callback is not None:
            self._judge_ctx(call.phase, callback)
        state, call._state = call._state, None
        modules = sys.modules.copy()
        call.modules = {
            name: getattr(modules[name], "__file__", None)
            for name in sorted(set(modules) - call._modules_before)
        }
        call._modules_before = frozenset()
        if state is not None:
            call.process = tuple(changes(state, snapshot()))
            restore(state)
        self._progress(call.phase)

    async def _bounded(self, name: str, action: Callable[[], Awaitable[Any]]) -> Any:
        if self.step_timeout_s is None:
            return await action()
        try:
            return await asyncio.wait_for(action(), self.step_timeout_s)
        except TimeoutError:
            raise StepTimeoutError(
                f"{name} did not finish within {self.step_timeout_s:g} s "
                "(--raycallbacks-timeout, per call)"
            ) from None

    def _unawaited(self, step: str, caught: list[warnings.WarningMessage]) -> None:
        for warning in caught:
            text = str(warning.message)
            if issubclass(warning.category, RuntimeWarning) and "was never awaited" in text:
                entry = (step, text)
                if entry not in self.unawaited:
                    self.unawaited.append(entry)

    def _judge_ctx(self, step: str, callback: Any) -> None:
        from reference_runner.ray_callback_ctx import ctx_field_problems

        ctx = getattr(callback, "ctx", None)
        if ctx is None:
            problems = [
                f"self.ctx is gone after {step} (Ray reads self.ctx right after every hook): "
                "change its fields, never delete or replace self.ctx"
            ]
        else:
            try:
                problems = ctx_field_problems(
                    ctx, placement_group_required=True, judge_custom_data=False
                )
            except Exception as exc:  # a ctx Ray's own code would choke on as well
                problems = [f"ctx cannot be read: {type(exc).__name__}: {exc}"]
        for problem in problems:
            entry = (step, problem)
            if entry not in self.ctx_problems:
                self.ctx_problems.append(entry)

    def _progress(self, entry: str) -> None:
        with _PROGRESS_LOCK:
            steps = _PROGRESS.setdefault(self.token, [])
            if steps and steps[-1].endswith(" (unfinished)"):
                steps.pop()
            steps.append(entry)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["calls"] = [_plain_call(c) for c in self.calls]
        return state


def _plain_call(call: Call) -> Call:
    """``call`` without what does not travel (a process snapshot of a step cut short), its
    error replaced by a description when it does not pickle."""
    from reference_runner.ray_replica import picklable_error

    call._state = None
    call._modules_before = frozenset()
    if call.error is not None:
        call.error = picklable_error(call.error)
    return call
