"""The bounded path: no callback can hang its caller, and the error says why.

Bounds are small (0.2 s) and the assertions on time are only generous "does not hang"
limits; every blocked thread a test starts is released at its end.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reference_runner import CallbackRunner, CallbackTimeoutError
from reference_runner.bounded import BoundedCaller, CallbackWorker, grace_s

BOUND = 0.2
DOES_NOT_HANG_S = 10.0
BLOCKED_LOOP_HINT = (
    "the event loop was blocked for more than 0.2 s inside an async callback: a blocking call "
    "such as time.sleep or a synchronous client inside async def? use await asyncio.sleep / "
    "asyncio.to_thread"
)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test: frees every callback blocked on it."""
    event = threading.Event()
    yield event
    event.set()


def run_timed(runner: CallbackRunner, phase: str = "pre_download") -> tuple[Any, float]:
    """Run one phase; return (the CallbackTimeoutError raised, seconds it took)."""
    started = time.monotonic()
    with pytest.raises(CallbackTimeoutError) as info:
        asyncio.run(runner.run(phase, None))
    return info.value, time.monotonic() - started


def test_time_sleep_inside_async_def_raises_with_the_blocked_loop_hint() -> None:
    async def sleeps(phase: str, config: Any, data: dict[str, Any]) -> None:
        time.sleep(1.5)

    runner = CallbackRunner([sleeps], timeout_s=BOUND, trace=True)
    error, took = run_timed(runner)
    assert took < DOES_NOT_HANG_S
    assert error.cause == "blocked-loop"
    message = str(error)
    assert BLOCKED_LOOP_HINT in message
    assert "sleeps" in message and "'pre_download'" in message
    assert "every callback call must return within the runner's timeout_s" in message
    assert runner.trace[-1].outcome == "timeout" and runner.trace[-1].error is error


def test_a_loop_blocked_for_good_does_not_hang_the_caller(release: threading.Event) -> None:
    async def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # blocks after its first await, not at once
        release.wait(3600)  # a synchronous client inside async def

    error, took = run_timed(CallbackRunner([blocks], timeout_s=BOUND))
    assert took < DOES_NOT_HANG_S
    assert error.cause == "blocked-loop" and BLOCKED_LOOP_HINT in str(error)


def test_async_callback_that_swallows_cancellation_is_named(release: threading.Event) -> None:
    async def stubborn(phase: str, config: Any, data: dict[str, Any]) -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    error, took = run_timed(CallbackRunner([stubborn], timeout_s=BOUND))
    assert took < DOES_NOT_HANG_S
    assert error.cause == "ignored-cancel"
    assert "kept running" in str(error) and "re-raise CancelledError" in str(error)


def test_blocking_sync_callback_is_named(release: threading.Event) -> None:
    def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        release.wait(3600)

    error, took = run_timed(CallbackRunner([blocks], timeout_s=BOUND))
    assert took < DOES_NOT_HANG_S
    assert error.cause == "sync-blocked"
    assert "synchronous callback was still running after 0.2 s" in str(error)


def test_slow_async_callback_is_cancelled_and_the_worker_kept() -> None:
    threads: list[threading.Thread] = []
    cancelled: list[bool] = []

    async def slow(phase: str, config: Any, data: dict[str, Any]) -> None:
        threads.append(threading.current_thread())
        if phase == "pre_download":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

    runner = CallbackRunner([slow], timeout_s=BOUND)
    error, took = run_timed(runner)
    assert took < DOES_NOT_HANG_S
    assert error.cause == "cancelled" and "was cancelled" in str(error)
    assert cancelled == [True]
    asyncio.run(runner.run("post_download", None))
    assert threads[0] is threads[1], "a worker whose call was cancelled cleanly is reused"
    runner.close()


def test_the_caller_loop_keeps_running_while_a_callback_blocks(
    release: threading.Event,
) -> None:
    async def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        release.wait(3600)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        with pytest.raises(CallbackTimeoutError):
            await CallbackRunner([blocks], timeout_s=BOUND).run("pre_download", None)
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 0, "the caller's own loop was never blocked"


def test_one_worker_thread_serves_every_call_until_it_is_abandoned(
    release: threading.Event,
) -> None:
    seen: list[threading.Thread] = []

    def sync_cb(phase: str, config: Any, data: dict[str, Any]) -> None:
        seen.append(threading.current_thread())

    async def async_cb(phase: str, config: Any, data: dict[str, Any]) -> None:
        seen.append(threading.current_thread())
        if phase == "pre_engine_init":
            time.sleep(0)  # fine: not blocking for long
        if data.get("block") == phase:
            release.wait(3600)

    runner = CallbackRunner([sync_cb, async_cb], timeout_s=BOUND, data={"block": "stuck"})
    for phase in ("pre_initialization", "pre_download", "pre_engine_init"):
        asyncio.run(runner.run(phase, None))
    assert len(seen) == 6 and len(set(seen)) == 1
    first = seen[0]
    assert first is not threading.current_thread() and first.daemon
    run_timed(runner, "stuck")
    asyncio.run(runner.run("post_initialization", None))
    assert seen[-1] is not first, "an abandoned worker is replaced"
    release.set()
    first.join(DOES_NOT_HANG_S)
    assert not first.is_alive(), "the abandoned worker stops once it gets control back"
    runner.close()
    seen[-1].join(DOES_NOT_HANG_S)
    assert not seen[-1].is_alive(), "close() stops the worker"


def test_the_worker_stops_when_the_runner_is_garbage_collected() -> None:
    seen: list[threading.Thread] = []
    runner = CallbackRunner(
        [lambda p, c, d: seen.append(threading.current_thread())], timeout_s=BOUND
    )
    asyncio.run(runner.run("pre_download", None))
    del runner
    gc.collect()
    seen[0].join(DOES_NOT_HANG_S)
    assert not seen[0].is_alive()


def test_async_callbacks_run_on_the_workers_loop_with_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: dict[str, Any] = {}

    async def probe(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        seen["loop"] = asyncio.get_running_loop()
        return {"var": var.get()}

    async def main() -> Any:
        var.set("caller's")
        runner = CallbackRunner([probe], timeout_s=5)
        data = await runner.run("pre_download", None)
        runner.close()
        return asyncio.get_running_loop(), data

    caller_loop, data = asyncio.run(main())
    assert data["var"] == "caller's"
    assert seen["loop"] is not caller_loop


def test_errors_and_base_exceptions_come_back_from_the_worker() -> None:
    class Boom(Exception):
        pass

    async def explode(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise Boom("async")

    def leave(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise SystemExit(3)

    with pytest.raises(Boom, match="async") as info:
        asyncio.run(CallbackRunner([explode], timeout_s=5).run("pre_download", None))
    assert "explode" in info.value.__notes__[0]
    assert info.traceback[-1].name == "explode", "the callback's frame stays in the traceback"
    runner = CallbackRunner([leave], timeout_s=5, error_policy="continue")
    with pytest.raises(SystemExit):
        asyncio.run(runner.run("pre_download", None))
    assert runner.errors == []


def test_cancelling_the_caller_cancels_the_call_promptly(release: threading.Event) -> None:
    async def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        release.wait(3600)

    async def main() -> float:
        runner = CallbackRunner([blocks], timeout_s=3600)
        task = asyncio.create_task(runner.run("pre_download", None))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < DOES_NOT_HANG_S


def test_timeout_error_with_its_cause_survives_pickling() -> None:
    error = CallbackTimeoutError(
        callback="m:cb", phase="pre_download", timeout_s=0.2, cause="blocked-loop"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is CallbackTimeoutError and str(copy) == str(error)
    assert copy.cause == "blocked-loop" and BLOCKED_LOOP_HINT in str(copy)


@pytest.mark.parametrize("cause", ["blocked-loop", "ignored-cancel", "sync-blocked", "cancelled"])
def test_every_cause_has_its_own_message(cause: Any) -> None:
    messages = {
        c: str(CallbackTimeoutError(callback="m:cb", phase="p", timeout_s=1, cause=c))
        for c in ("blocked-loop", "ignored-cancel", "sync-blocked", "cancelled", "unknown")
    }
    assert len(set(messages.values())) == len(messages)
    assert messages[cause].startswith("callback m:cb did not finish phase 'p' within 1 s")


def test_grace_is_a_quarter_of_the_bound_within_limits() -> None:
    assert grace_s(0.01) == 0.1 and grace_s(2) == pytest.approx(0.5) and grace_s(300) == 1.0


def test_bounded_caller_needs_a_positive_bound_and_its_worker_is_a_daemon() -> None:
    with pytest.raises(ValueError, match="positive"):
        BoundedCaller(0)
    worker = CallbackWorker()
    assert worker.thread.daemon and worker.thread.name.startswith("reference_runner-callbacks")
    worker.abandon()
    worker.thread.join(DOES_NOT_HANG_S)
    assert not worker.thread.is_alive()
