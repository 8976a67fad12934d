"""The ``callback_runner`` fixture gives the runner's guarantee: with ``timeout_s``, a callback
that blocks inside ``async def`` raises ``CallbackTimeoutError`` with the hint, promptly,
instead of hanging the test."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from reference_runner import CallbackTimeoutError

HINT = (
    "the event loop was blocked for more than 0.2 s inside an async callback: a blocking call "
    "such as time.sleep or a synchronous client inside async def? use await asyncio.sleep / "
    "asyncio.to_thread"
)


def test_a_runner_from_the_fixture_bounds_a_blocked_async_callback(callback_runner: Any) -> None:
    release = threading.Event()

    async def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        release.wait(3600)  # a synchronous client inside async def

    runner = callback_runner(blocks, timeout_s=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(CallbackTimeoutError) as info:
            asyncio.run(runner.run("pre_engine_init", None))
    finally:
        release.set()
    assert time.monotonic() - started < 10
    assert HINT in str(info.value) and "'pre_engine_init'" in str(info.value)
    assert runner.trace[-1].outcome == "timeout", "the fixture's runner traces by default"


def test_a_users_test_with_time_sleep_in_async_def_fails_fast_with_the_hint(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_user="""
        import asyncio
        import time

        async def slow_client(phase, config, data):
            time.sleep(2)

        def test_mine(callback_runner):
            runner = callback_runner(slow_client, timeout_s=0.2)
            asyncio.run(runner.run("pre_download", None))
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    started = time.monotonic()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert time.monotonic() - started < 30
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "CallbackTimeoutError" in output
    assert "use await asyncio.sleep / asyncio.to_thread" in output
