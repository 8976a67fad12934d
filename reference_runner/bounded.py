"""Bounded callback calls: a call that overruns raises instead of hanging its caller.

Contract (docs/design.md §The callback contract): with a bound ``timeout_s``, every callback
call returns, raises, or raises :class:`CallbackTimeoutError` within about ``timeout_s``
(plus a grace of a quarter of the bound, between 0.1 s and 1 s, spent in full only by a
blocked loop or an ignored cancellation, to tell the causes apart), whatever the callback does:
block inside ``async def`` (``time.sleep``, a synchronous client), swallow
``asyncio.CancelledError`` and keep going, or block in plain ``def``.

The choice, and why: ``asyncio.wait_for`` on the caller's own loop cannot fire while that loop
is blocked, and a blocking call inside an ``async def`` blocks the loop it runs on. So on the
bounded path no callback runs on the caller's loop. Each call runs on an event loop owned by a
daemon *worker thread* (:class:`CallbackWorker`); the caller only awaits a future, with a timer
on its own loop, which stays free to fire. At the deadline the caller schedules a *probe* on
the worker loop that cancels the call, and waits a grace period:

* the synchronous part of the call (the ``def`` itself) was still running: a slow
  synchronous callback;
* the call ended (cancelled) within the grace: a slow async callback, cancelled cleanly; the
  worker stays in use;
* the probe did not run: the worker loop was blocked, by a blocking call inside an async
  callback;
* the probe ran but the call kept going: the async callback ignored its cancellation.

In every case but the clean cancellation the worker is *abandoned*: it is asked to stop once
it gets control back, it is a daemon, nothing ever waits on it again, and the next call gets a
fresh worker. A healthy worker is reused for every call of its runner, so the bound costs two
cross-thread hand-offs per call (the call to the worker loop, the outcome back; measured by
``benchmarks/bench_runner.py``), not a thread per call.

Semantic consequence: on the bounded path a callback runs in the worker thread, and an async
callback runs on the worker's event loop, not the caller's. Tasks it creates with
``asyncio.create_task`` live on that loop (and stop with the worker), and objects bound to the
caller's loop (its futures, locks, queues) must not be awaited from the callback. The caller's
``contextvars`` are copied into each call, as ``asyncio.to_thread`` does. The default path
(no bound) keeps calling callbacks inline on the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any, Final

from .errors import CallbackTimeoutError, TimeoutCause

#: Longest grace after the deadline used to tell why a call overran.
MAX_GRACE_S: Final = 1.0
_MIN_GRACE_S: Final = 0.1
_DRAIN_S: Final = 0.1

# Stages of a call, written by the worker thread, read by the caller at the deadline.
_QUEUED: Final = 0
_SYNC: Final = 1  # the callable itself is running (a plain def, or before its first await)
_ASYNC: Final = 2  # awaiting the awaitable it returned
_DONE: Final = 3

_worker_numbers = itertools.count(1)


def grace_s(timeout_s: float) -> float:
    """The grace after the deadline: a quarter of the bound, between 0.1 s and 1 s."""
    return min(MAX_GRACE_S, max(_MIN_GRACE_S, timeout_s / 4))


class _Call:
    """One call: its stage and outcome (set by the worker) and the caller's waiter."""

    __slots__ = ("caller_loop", "error", "probed", "result", "stage", "task", "waiter")

    def __init__(self, caller_loop: asyncio.AbstractEventLoop) -> None:
        self.caller_loop = caller_loop
        self.waiter: asyncio.Future[None] = caller_loop.create_future()
        self.stage = _QUEUED
        self.task: asyncio.Task[None] | None = None
        self.probed = False
        self.result: Any = None
        self.error: BaseException | None = None


class CallbackWorker:
    """A daemon thread running an event loop, on which bounded calls run one after another.

    :meth:`submit` hands it a call from any thread; :meth:`abandon` asks it to stop as soon as
    it gets control back (a blocked call keeps its thread until it returns on its own).
    """

    def __init__(self, name: str | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.abandoned = False
        self.thread = threading.Thread(
            target=self._serve,
            name=name or f"reference_runner-callbacks-{next(_worker_numbers)}",
            daemon=True,
        )
        self.thread.start()

    # ------------------------------------------------------------------ caller side

    def submit(self, call: _Call, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` (and await what it returns) on this worker, in the caller's context."""
        self.loop.call_soon_threadsafe(self._begin, call, fn, context=contextvars.copy_context())

    def probe(self, call: _Call) -> None:
        """Schedule the deadline probe: mark the call probed and cancel it."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self._probe, call)

    def abandon(self) -> None:
        """Never use this worker again; its loop stops once it gets control back."""
        self.abandoned = True
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)

    # ------------------------------------------------------------------ worker side

    def _serve(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                if pending:  # bounded: a task that ignores cancellation is left behind
                    loop.run_until_complete(asyncio.wait(pending, timeout=_DRAIN_S))
            loop.close()

    def _begin(self, call: _Call, fn: Callable[[], Any]) -> None:
        call.stage = _SYNC
        try:
            result = fn()
        except BaseException as exc:  # delivered to the caller, never raised in the loop
            _deliver(call, None, exc)
            return
        if not inspect.isawaitable(result):
            _deliver(call, result, None)
            return
        call.stage = _ASYNC
        call.task = self.loop.create_task(_finish(call, result))

    @staticmethod
    def _probe(call: _Call) -> None:
        call.probed = True
        if call.task is not None:
            call.task.cancel()
        with contextlib.suppress(RuntimeError):
            call.caller_loop.call_soon_threadsafe(_wake, call.waiter)


async def _finish(call: _Call, awaitable: Any) -> None:
    try:
        result = await awaitable
    except GeneratorExit:  # the task is being destroyed with its closed loop: let it go
        raise
    except BaseException as exc:  # CancelledError included: the caller decides what it means
        _deliver(call, None, exc)
    else:
        _deliver(call, result, None)


def _deliver(call: _Call, result: Any, error: BaseException | None) -> None:
    call.result = result
    call.error = error
    call.stage = _DONE
    with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody waits
        call.caller_loop.call_soon_threadsafe(_wake, call.waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class BoundedCaller:
    """Runs calls on a reused :class:`CallbackWorker`, each bounded by ``timeout_s``.

    One per runner. The worker starts at the first call and is replaced after it was
    abandoned; :meth:`close` stops it.
    """

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self._worker: CallbackWorker | None = None

    @property
    def worker(self) -> CallbackWorker | None:
        """The worker the next call runs on, if one is started."""
        return self._worker

    async def call(self, fn: Callable[[], Any], *, callback: str, phase: str) -> Any:
        """Return what ``fn()`` returns (awaited if awaitable), or raise what it raises.

        Raises :class:`CallbackTimeoutError` naming ``callback``, ``phase`` and the likely
        cause when it did not finish within ``timeout_s``.
        """
        worker = self._worker
        if worker is None or worker.abandoned:
            worker = self._worker = CallbackWorker()
        loop = asyncio.get_running_loop()
        call = _Call(loop)
        worker.submit(call, fn)
        timer = loop.call_later(self.timeout_s, _wake, call.waiter)
        try:
            await call.waiter
        except asyncio.CancelledError:  # our caller was cancelled: stop the call, give up
            if call.stage != _DONE:
                worker.probe(call)
                self._abandon(worker)
            raise
        finally:
            timer.cancel()
        if call.stage == _DONE:
            return _outcome(call)
        try:
            cause = await self._diagnose(worker, call, loop)
        except asyncio.CancelledError:
            self._abandon(worker)
            raise
        raise CallbackTimeoutError(
            callback=callback, phase=phase, timeout_s=self.timeout_s, cause=cause
        )

    async def _diagnose(
        self, worker: CallbackWorker, call: _Call, loop: asyncio.AbstractEventLoop
    ) -> TimeoutCause:
        """Past the deadline: cancel the call, tell why it overran, drop a stuck worker.

        The probe wakes the caller when it runs and the call's end wakes it again, so the
        grace is spent in full only by a blocked loop or an ignored cancellation.
        """
        if call.stage == _SYNC:
            self._abandon(worker)
            return "sync-blocked"
        end = loop.time() + grace_s(self.timeout_s)
        await _wait_until(call, loop, end, then=lambda: worker.probe(call))
        if call.stage != _DONE and call.probed:
            await _wait_until(call, loop, end)
        if call.stage == _DONE:
            return "cancelled"
        self._abandon(worker)
        return "ignored-cancel" if call.probed else "blocked-loop"

    def _abandon(self, worker: CallbackWorker) -> None:
        worker.abandon()
        if self._worker is worker:
            self._worker = None

    def close(self) -> None:
        """Stop the worker (it finishes once a call still running returns)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.abandon()


async def _wait_until(
    call: _Call,
    loop: asyncio.AbstractEventLoop,
    end: float,
    then: Callable[[], None] | None = None,
) -> None:
    """Wait, at most until ``end``, for the next wake-up of ``call`` (after running ``then``)."""
    call.waiter = loop.create_future()
    if then is not None:
        then()
    if call.stage == _DONE:  # it ended before the new waiter was in place
        return
    timer = loop.call_at(end, _wake, call.waiter)
    try:
        await call.waiter
    finally:
        timer.cancel()


def _outcome(call: _Call) -> Any:
    error = call.error
    if error is not None:
        call.error = None  # no cycle through the traceback
        raise error
    return call.result


__all__ = ["MAX_GRACE_S", "BoundedCaller", "CallbackWorker", "grace_s"]
