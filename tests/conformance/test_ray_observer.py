"""``conformance.ray_observer.StepRecorder``: watching Ray's steps, putting the process back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
from typing import Any

from conformance.process_state import ENVIRONMENT
from conformance.ray_observer import RAY_CALLBACK_LOGGER, StepRecorder, forget, progress


class Ctx:
    def __init__(self) -> None:
        self.worker_node_download_model = None
        self.placement_group = None
        self.runtime_env = {"env_vars": {}}
        self.custom_data: dict[str, Any] = {}
        self.run_init_node = True


class Callback:
    def __init__(self) -> None:
        self.ctx = Ctx()


def test_a_step_is_recorded_with_ctx_and_the_process_put_back() -> None:
    recorder = StepRecorder()
    callback = Callback()

    async def action() -> None:
        os.environ["RAYCALLBACKS_TEST_STEP"] = "1"
        callback.ctx.custom_data["k"] = "v"

    asyncio.run(recorder.step("on_before_node_init", action, callback))
    (call,) = recorder.calls
    assert call.before["custom_data"] == {} and call.after["custom_data"] == {"k": "v"}
    assert [c.aspect for c in call.process] == [ENVIRONMENT]
    assert "RAYCALLBACKS_TEST_STEP" not in os.environ  # put back
    assert progress(recorder.token) == ["on_before_node_init"]
    forget(recorder.token)


def test_what_ray_logs_and_swallows_is_kept() -> None:
    recorder = StepRecorder()

    async def action() -> None:
        logging.getLogger(RAY_CALLBACK_LOGGER).error("Error running callback method 'x' on C: no")

    asyncio.run(recorder.step("on_before_node_init", action, Callback()))
    assert recorder.logged == [
        ("on_before_node_init", "Error running callback method 'x' on C: no")
    ]


def test_a_coroutine_dropped_unawaited_is_noticed() -> None:
    recorder = StepRecorder()

    async def later() -> None:
        return None

    async def action() -> None:
        later()  # what Ray's run_callback does with a plain def's coroutine

    asyncio.run(recorder.step("on_after_node_init", action, Callback()))
    assert recorder.unawaited and "was never awaited" in recorder.unawaited[0][1]


def test_it_travels_with_errors_it_cannot_pickle_described() -> None:
    recorder = StepRecorder()

    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    async def action() -> None:
        raise Unpicklable(1, 2)

    with contextlib.suppress(Unpicklable):
        asyncio.run(recorder.step("on_after_node_init", action, Callback()))
    back = pickle.loads(pickle.dumps(recorder))
    (call,) = back.calls
    assert type(call.error).__name__ == "UnpicklableError" and "1/2" in str(call.error)
