"""CallbackRunner: order, merge, async, errors, timeouts, reserved keys, trace."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from reference_runner import (
    PHASES,
    CallbackReturnError,
    CallbackRunner,
    CallbackTimeoutError,
    NodeModelDownloadable,
)
from reference_runner.trace import SYSTEM


def run(runner: CallbackRunner, phase: str = "pre_initialization", config: Any = None) -> Any:
    return asyncio.run(runner.run(phase, config))


def returning(mapping: dict[str, Any] | None) -> Any:
    def callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
        return mapping

    return callback


# ---------------------------------------------------------------- calling and merging


def test_callbacks_are_called_in_order_with_phase_config_and_shared_data() -> None:
    calls: list[tuple[str, str, Any, int]] = []
    config = object()

    def first(phase: str, cfg: Any, data: dict[str, Any]) -> None:
        calls.append(("first", phase, cfg, id(data)))

    def second(phase: str, cfg: Any, data: dict[str, Any]) -> None:
        calls.append(("second", phase, cfg, id(data)))

    runner = CallbackRunner([first, second])
    data = asyncio.run(runner.run("pre_download", config))
    assert [c[0] for c in calls] == ["first", "second"]
    assert all(c[1] == "pre_download" and c[2] is config for c in calls)
    assert {c[3] for c in calls} == {id(runner.data)} == {id(data)}


def test_later_callbacks_see_and_overwrite_earlier_returns() -> None:
    seen: list[Any] = []

    def reader(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data.get("k"))
        return {"k": "second"}

    runner = CallbackRunner([returning({"k": "first", "a": 1}), reader])
    data = run(runner)
    assert seen == ["first"]
    assert data == {"k": "second", "a": 1}


def test_merge_is_shallow() -> None:
    runner = CallbackRunner(
        [returning({"extra_init_kwargs": {"a": 1}}), returning({"extra_init_kwargs": {"b": 2}})]
    )
    assert run(runner)["extra_init_kwargs"] == {"b": 2}


def test_none_and_empty_mapping_leave_data_unchanged() -> None:
    runner = CallbackRunner([returning(None), returning({})], data={"x": 1})
    assert run(runner) == {"x": 1}


def test_any_mapping_is_accepted() -> None:
    from types import MappingProxyType

    runner = CallbackRunner([returning(MappingProxyType({"a": 1}))])  # type: ignore[arg-type]
    assert run(runner) == {"a": 1}


def test_async_callbacks_and_async_call_objects_are_awaited() -> None:
    async def coroutine_function(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"from_function": phase}

    class AsyncObject:
        async def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
            return {"from_object": phase}

    runner = CallbackRunner([coroutine_function, AsyncObject()])
    assert run(runner, "post_download") == {
        "from_function": "post_download",
        "from_object": "post_download",
    }


def test_stateful_object_keeps_state_across_phases() -> None:
    class Counter:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
            self.calls += 1
            return {"calls": self.calls}

    counter = Counter()
    runner = CallbackRunner([counter])
    asyncio.run(runner.run_all(None))
    assert counter.calls == len(PHASES)
    assert runner.data["calls"] == len(PHASES)
    assert runner.phases_run == PHASES


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="callback #1 is 'nope', which is not callable"):
        CallbackRunner([returning(None), "nope"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="error_policy must be one of"):
        CallbackRunner([], error_policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        CallbackRunner([], timeout_s=0)
    with pytest.raises(TypeError, match="phase must be a str"):
        run(CallbackRunner([]), phase=3)  # type: ignore[arg-type]


def test_run_sync_runs_outside_an_event_loop() -> None:
    runner = CallbackRunner([returning({"a": 1})])
    assert runner.run_sync("pre_download", None) == {"a": 1}


# ---------------------------------------------------------------- bad return values


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (["a"], "list ['a']"),
        ("text", "str 'text'"),
        (True, "bool True"),
        (False, "bool False"),
        (0, "int 0"),
    ],
)
def test_non_mapping_return_raises_naming_callback_and_phase(value: Any, shown: str) -> None:
    def bad_callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
        return value

    runner = CallbackRunner([returning({"kept": 1}), bad_callback])
    with pytest.raises(CallbackReturnError) as info:
        run(runner, "post_download")
    message = str(info.value)
    assert "#1" in message and "bad_callback" in message
    assert "'post_download'" in message and shown in message
    assert "must return None or a mapping" in message
    assert isinstance(info.value, TypeError)
    assert info.value.phase == "post_download"
    assert runner.data == {"kept": 1}, "data set before the failure stays"


def test_non_str_keys_raise_before_anything_is_merged() -> None:
    runner = CallbackRunner([returning({"ok": 1, 3: "x"})])  # type: ignore[dict-item]
    with pytest.raises(CallbackReturnError, match=r"non-str keys \[3\]"):
        run(runner)
    assert runner.data == {}


def test_async_callback_returning_a_list_is_rejected() -> None:
    async def bad(phase: str, config: Any, data: dict[str, Any]) -> Any:
        return [1]

    with pytest.raises(CallbackReturnError, match="returned list"):
        run(CallbackRunner([bad]))


# ---------------------------------------------------------------- reserved keys

WRONG_RESERVED = [
    ("local_node_download_model", "EVERYTHING"),
    ("worker_node_download_model", 3),
    ("placement_group", {"bundles": [{"GPU": 1}]}),
    ("runtime_env", ["pip"]),
    ("runtime_env", {"env_vars": {"A": 1}}),
    ("extra_init_kwargs", [("a", 1)]),
    ("skip_default_init", "yes"),
    ("download_result", "done"),
]


@pytest.mark.parametrize(("key", "value"), WRONG_RESERVED)
def test_reserved_key_with_wrong_type_is_rejected_when_returned(key: str, value: Any) -> None:
    runner = CallbackRunner([returning({key: value})])
    with pytest.raises(CallbackReturnError) as info:
        run(runner, "pre_engine_init")
    assert info.value.key == key
    assert f"data[{key!r}]" in str(info.value) and "reserved key" in str(info.value)
    assert key not in runner.data


@pytest.mark.parametrize(("key", "value"), WRONG_RESERVED)
def test_reserved_key_with_wrong_type_is_rejected_when_written_in_place(
    key: str, value: Any
) -> None:
    def writer(phase: str, config: Any, data: dict[str, Any]) -> None:
        data[key] = value

    with pytest.raises(CallbackReturnError) as info:
        run(CallbackRunner([writer]))
    assert info.value.key == key
    assert "wrote in place" in str(info.value)


@pytest.mark.parametrize(
    "write",
    [
        lambda d: d.update(skip_default_init=1),
        lambda d: d.setdefault("skip_default_init", "no"),
        lambda d: d.__ior__({"skip_default_init": None}),
    ],
)
def test_every_in_place_write_path_is_checked(write: Any) -> None:
    def writer(phase: str, config: Any, data: dict[str, Any]) -> None:
        write(data)

    with pytest.raises(CallbackReturnError, match="skip_default_init"):
        run(CallbackRunner([writer]))


def test_valid_reserved_values_are_accepted() -> None:
    runner = CallbackRunner(
        [
            returning(
                {
                    "local_node_download_model": NodeModelDownloadable.NONE,
                    "worker_node_download_model": "EXCLUDE_SAFETENSORS",
                    "runtime_env": {"env_vars": {"A": "1"}},
                    "extra_init_kwargs": {"max_model_len": 128},
                    "skip_default_init": False,
                }
            )
        ]
    )
    assert run(runner)["worker_node_download_model"] == "EXCLUDE_SAFETENSORS"


# ---------------------------------------------------------------- errors


class Boom(Exception):
    pass


def test_exception_is_reraised_as_itself_with_a_note() -> None:
    def explode(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise Boom("disk full")

    runner = CallbackRunner(
        [returning({"before": 1}), explode, returning({"after": 1})], trace=True
    )
    with pytest.raises(Boom, match="disk full") as info:
        run(runner, "post_download")
    notes = info.value.__notes__
    assert len(notes) == 1
    assert "callback #1" in notes[0] and "explode" in notes[0] and "'post_download'" in notes[0]
    assert info.traceback[-1].name == "explode", "the callback's frame stays in the traceback"
    assert runner.data == {"before": 1}
    assert runner.trace[-1].outcome == "error" and runner.trace[-1].error is info.value


def test_note_is_added_once_even_when_the_runner_is_nested() -> None:
    def explode(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise Boom("x")

    inner = CallbackRunner([explode])

    def outer(phase: str, config: Any, data: dict[str, Any]) -> None:
        inner.run_sync(phase, config)

    def in_thread(phase: str, config: Any, data: dict[str, Any]) -> None:
        result: list[BaseException] = []
        thread = threading.Thread(target=lambda: result.append(_catch(outer, phase)))
        thread.start()
        thread.join()
        raise result[0]

    with pytest.raises(Boom) as info:
        run(CallbackRunner([in_thread]))
    assert len(info.value.__notes__) == 1


def _catch(callback: Any, phase: str) -> BaseException:
    try:
        callback(phase, None, {})
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def test_continue_policy_collects_errors_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def explode(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise Boom(phase)

    runner = CallbackRunner(
        [explode, returning(["bad"]), returning({"after": 1})],  # type: ignore[list-item]
        error_policy="continue",
    )
    assert run(runner, "pre_download") == {"after": 1}
    assert [type(f.error) for f in runner.errors] == [Boom, CallbackReturnError]
    assert [f.index for f in runner.errors] == [0, 1]
    assert "callback #0" in caplog.text and "failed in phase 'pre_download'" in caplog.text


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_base_exceptions_pass_through_untouched(exc_type: type[BaseException]) -> None:
    def leave(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise exc_type()

    runner = CallbackRunner([leave], error_policy="continue")
    with pytest.raises(exc_type) as info:
        run(runner)
    assert not getattr(info.value, "__notes__", None)
    assert runner.errors == []


# ---------------------------------------------------------------- timeouts


def test_async_callback_that_never_finishes_times_out() -> None:
    async def forever(phase: str, config: Any, data: dict[str, Any]) -> None:
        await asyncio.Event().wait()

    runner = CallbackRunner([forever], timeout_s=0.05, trace=True)
    started = time.monotonic()
    with pytest.raises(CallbackTimeoutError) as info:
        run(runner, "pre_engine_init")
    assert time.monotonic() - started < 5
    assert isinstance(info.value, TimeoutError)
    assert "forever" in str(info.value) and "'pre_engine_init'" in str(info.value)
    assert runner.trace[-1].outcome == "timeout"


def test_async_callback_that_ignores_cancellation_does_not_hang_the_runner() -> None:
    async def stubborn(phase: str, config: Any, data: dict[str, Any]) -> None:
        for _ in range(100):
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    with pytest.raises(CallbackTimeoutError):
        run(CallbackRunner([stubborn], timeout_s=0.05))


def test_sync_callback_that_blocks_times_out_and_is_never_waited_on_again() -> None:
    release = threading.Event()

    def blocks(phase: str, config: Any, data: dict[str, Any]) -> None:
        release.wait(10)

    runner = CallbackRunner([blocks], timeout_s=0.05)
    with pytest.raises(CallbackTimeoutError, match="blocks"):
        run(runner)
    release.set()


def test_timeout_path_still_merges_checks_and_reraises() -> None:
    async def fine(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        return {"a": 1}

    def sync_fine(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        return {"b": threading.current_thread().name}

    def explode(phase: str, config: Any, data: dict[str, Any]) -> None:
        raise Boom("in thread")

    runner = CallbackRunner([fine, sync_fine, returning(["x"])], timeout_s=5)  # type: ignore[list-item]
    with pytest.raises(CallbackReturnError):
        run(runner)
    assert runner.data["a"] == 1 and runner.data["b"].startswith("reference_runner-callbacks")
    with pytest.raises(Boom) as info:
        run(CallbackRunner([explode], timeout_s=5))
    assert "explode" in info.value.__notes__[0]


# ---------------------------------------------------------------- trace


def test_trace_records_added_changed_removed_and_system_writes() -> None:
    def remover(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        del data["a"]
        data["c"] = 3
        return {"b": 20}

    runner = CallbackRunner([returning({"a": 1, "b": 2}), remover], trace=True)
    run(runner, "pre_initialization")
    runner.data["system_key"] = "x"
    run(runner, "pre_download")
    entries = runner.trace
    first, second, system, third = entries[:4]
    assert (first.callback.endswith("callback"), first.added, first.changed) == (
        True,
        ("a", "b"),
        (),
    )
    assert second.added == ("c",) and second.changed == ("b",) and second.removed == ("a",)
    assert second.returned == ("b",)
    assert system.callback == SYSTEM and system.added == ("system_key",)
    assert third.phase == "pre_download" and third.added == ("a",) and third.changed == ("b",)
    assert all(e.duration_s >= 0 for e in entries)


def test_key_origins_names_who_set_each_key_last() -> None:
    runner = CallbackRunner([returning({"a": 1}), returning({"a": 2, "b": 1})], trace=True)
    run(runner, "post_download")
    origins = runner.key_origins()
    assert origins["a"].index == 1 and origins["a"].phase == "post_download"
    assert origins["a"].value == 2


def test_strict_mode_sees_changes_inside_values() -> None:
    def mutate(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["extra_init_kwargs"]["x"] = 1

    for strict, expected in ((False, ()), (True, ("extra_init_kwargs",))):
        runner = CallbackRunner([mutate], trace=True, strict=strict, data={"extra_init_kwargs": {}})
        run(runner)
        assert runner.trace[-1].changed == expected


def test_rewriting_the_same_object_is_not_a_change() -> None:
    marker = object()

    def same(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["m"] = data["m"]

    runner = CallbackRunner([same], data={"m": marker}, trace=True)
    run(runner)
    assert runner.trace[-1].touched == ()


def test_trace_needs_to_be_asked_for() -> None:
    runner = CallbackRunner([returning({"a": 1})])
    run(runner)
    with pytest.raises(RuntimeError, match=r"CallbackRunner\(callbacks, trace=True\)"):
        _ = runner.trace


@pytest.mark.parametrize("options", [{}, {"trace": True}, {"timeout_s": 5}])
def test_every_path_applies_the_same_rules(options: dict[str, Any]) -> None:
    """The fast path and the traced/bounded path check and merge identically."""

    def writer(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        data["in_place"] = phase
        return {"returned": phase}

    runner = CallbackRunner([writer], **options)
    assert run(runner, "post_download") == {
        "in_place": "post_download",
        "returned": "post_download",
    }
    for bad in (["x"], {1: 2}, {"skip_default_init": "yes"}):
        with pytest.raises(CallbackReturnError):
            run(CallbackRunner([returning(bad)], **options))

    def bad_in_place(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["extra_init_kwargs"] = "x"

    with pytest.raises(CallbackReturnError, match="wrote in place"):
        run(CallbackRunner([bad_in_place], **options))


@pytest.mark.parametrize(
    "error",
    [
        __import__("reference_runner").CallbackLoadError("a.b", "no module named 'a'"),
        CallbackReturnError("bad", callback="m:cb", phase="pre_download", key="runtime_env"),
        CallbackTimeoutError(callback="m:cb", phase="pre_download", timeout_s=2.0),
    ],
)
def test_errors_survive_pickling_to_and_from_ray_workers(error: Exception) -> None:
    import pickle

    error.add_note("a note")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert vars(copy) == vars(error) and copy.__notes__ == ["a note"]
