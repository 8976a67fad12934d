"""A rejected call leaves ``data`` as it was before that call, under either error policy and
on every path (default, traced, strict, bounded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_runner import CallbackReturnError, CallbackRunner

PATHS = [{}, {"trace": True}, {"strict": True}, {"timeout_s": 5}]
PATH_IDS = ["default", "trace", "strict", "bounded"]
BEFORE = {"a": 0, "b": [1], "extra_init_kwargs": {"k": 1}}

Write = Callable[[dict[str, Any]], Any]


def _set(d: dict[str, Any]) -> None:
    d["skip_default_init"] = "yes"


def _update(d: dict[str, Any]) -> None:
    d.update(skip_default_init="yes")


def _setdefault(d: dict[str, Any]) -> None:
    d.setdefault("skip_default_init", "yes")


def _ior(d: dict[str, Any]) -> None:
    d |= {"runtime_env": ["pip"]}


def _non_str_key(d: dict[str, Any]) -> None:
    d[3] = "x"  # type: ignore[index]


def _deletes_then_writes_bad(d: dict[str, Any]) -> None:
    del d["a"]
    d.pop("b")
    d["new"] = 1
    d["extra_init_kwargs"] = "not a dict"


def _clears_then_writes_bad(d: dict[str, Any]) -> None:
    d.clear()
    d["worker_node_download_model"] = "EVERYTHING"


def _popitem_then_writes_bad(d: dict[str, Any]) -> None:
    d.popitem()
    d["local_node_download_model"] = 3


def _writes_then_returns_bad(d: dict[str, Any]) -> dict[str, Any]:
    d["a"] = "changed"
    d["new"] = 1
    return {"skip_default_init": "yes"}


def _writes_then_returns_a_list(d: dict[str, Any]) -> list[str]:
    del d["a"]
    return ["not", "a", "mapping"]


def _writes_then_returns_non_str_keys(d: dict[str, Any]) -> dict[Any, Any]:
    d.setdefault("new", 1)
    return {1: "x"}


BAD_WRITES: list[Write] = [
    _set,
    _update,
    _setdefault,
    _ior,
    _non_str_key,
    _deletes_then_writes_bad,
    _clears_then_writes_bad,
    _popitem_then_writes_bad,
    _writes_then_returns_bad,
    _writes_then_returns_a_list,
    _writes_then_returns_non_str_keys,
]


def callback_doing(write: Write, *, is_async: bool = False) -> Any:
    if is_async:

        async def async_callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
            return write(data)

        return async_callback

    def callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
        return write(data)

    return callback


@pytest.mark.parametrize("options", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])
@pytest.mark.parametrize("write", BAD_WRITES, ids=lambda w: w.__name__.strip("_"))
def test_a_rejected_call_leaves_data_exactly_as_it_was(
    write: Write, is_async: bool, options: dict[str, Any]
) -> None:
    before = {k: v for k, v in BEFORE.items()}
    runner = CallbackRunner(
        [callback_doing(write, is_async=is_async)],
        error_policy="continue",
        data=before,
        **options,
    )
    asyncio.run(runner.run("pre_download", None))
    runner.close()
    assert [type(f.error) for f in runner.errors] == [CallbackReturnError]
    assert dict(runner.data) == BEFORE
    assert all(runner.data[k] is before[k] for k in BEFORE), "the very same objects"
    assert not runner.data.has_writes, "the rollback is not itself recorded as writes"
    if runner.tracing:
        (entry,) = runner.trace
        assert entry.outcome == "error" and entry.touched == ()


@pytest.mark.parametrize("options", PATHS, ids=PATH_IDS)
def test_the_raise_policy_rolls_back_too(options: dict[str, Any]) -> None:
    runner = CallbackRunner([callback_doing(_deletes_then_writes_bad)], data=BEFORE, **options)
    with pytest.raises(CallbackReturnError, match="extra_init_kwargs"):
        asyncio.run(runner.run("pre_download", None))
    runner.close()
    assert dict(runner.data) == BEFORE


def test_a_rejected_skip_default_init_never_reaches_the_reader() -> None:
    """The bug this rule closes: the bad value stayed and ``bool("yes")`` read as True."""

    def writes_yes(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["skip_default_init"] = "yes"

    def reader(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        return {"seen": data.get("skip_default_init", "absent")}

    runner = CallbackRunner([writes_yes, reader], error_policy="continue")
    assert runner.run_sync("pre_download", None) == {"seen": "absent"}


def test_an_ordinary_exception_keeps_what_the_call_wrote() -> None:
    """Only rejections roll back: data set before a callback's own exception stays."""

    def writes_then_raises(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["partial"] = 1
        raise RuntimeError("half done")

    runner = CallbackRunner([writes_then_raises], error_policy="continue")
    assert runner.run_sync("pre_download", None) == {"partial": 1}


def test_an_adapter_raising_callback_return_error_is_a_rejection_too() -> None:
    def adapter_like(phase: str, config: Any, data: dict[str, Any]) -> None:
        data["placement_group"] = "pg-id"  # what an adapter maps from a bad ctx field
        raise CallbackReturnError("ctx.placement_group is a str", callback="x", phase=phase)

    runner = CallbackRunner([adapter_like], error_policy="continue", data={"a": 1})
    assert runner.run_sync("pre_download", None) == {"a": 1}


# ---------------------------------------------------------------------- the property

KEYS = "abcde"
good_ops = st.tuples(
    st.sampled_from(["return", "set", "update", "setdefault", "delete", "pop"]),
    st.sampled_from(KEYS),
    st.integers(0, 9),
)
bad_ops = st.tuples(
    st.sampled_from(
        ["set-bad", "update-bad", "setdefault-bad", "return-bad", "return-list", "non-str-key"]
    ),
    st.just("skip_default_init"),
    st.just(0),
)
Op = tuple[str, str, int]


@st.composite
def callback_plans(draw: st.DrawFn) -> tuple[bool, list[Op]]:
    """(is_good, ops): a good plan only writes valid values; a bad one adds one rejected
    write or return at a random position among valid ones."""
    ops = draw(st.lists(good_ops, max_size=4))
    if draw(st.booleans()):
        return True, ops
    ops.insert(draw(st.integers(0, len(ops))), draw(bad_ops))
    return False, ops


def make_callback(ops: list[Op], is_async: bool) -> Any:
    def act(data: dict[str, Any]) -> Any:
        returned: Any = {}
        for op, key, value in ops:
            if op == "return":
                returned[key] = value
            elif op == "set":
                data[key] = value
            elif op == "update":
                data.update({key: value})
            elif op == "setdefault":
                data.setdefault(key, value)
            elif op == "delete":
                with contextlib.suppress(KeyError):
                    del data[key]
            elif op == "pop":
                data.pop(key, None)
            elif op == "set-bad":
                data[key] = "yes"
            elif op == "update-bad":
                data.update({key: "yes"})
            elif op == "setdefault-bad":
                data.setdefault(key, "yes")
            elif op == "return-bad":
                returned[key] = "yes"
            elif op == "return-list":
                return ["not a mapping"]
            elif op == "non-str-key":
                data[7] = "x"  # type: ignore[index]
        return returned or None

    return callback_doing(act, is_async=is_async)


def model(ops: list[Op], data: dict[str, Any]) -> None:
    """What a good callback does to a plain dict."""
    returned: dict[str, Any] = {}
    for op, key, value in ops:
        if op == "return":
            returned[key] = value
        elif op in ("set", "update"):
            data[key] = value
        elif op == "setdefault":
            data.setdefault(key, value)
        else:
            data.pop(key, None)
    data.update(returned)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(callback_plans(), min_size=1, max_size=6),
    st.sampled_from(range(len(PATHS))),
    st.booleans(),
    st.dictionaries(st.sampled_from(KEYS), st.integers(), max_size=3),
)
def test_under_continue_data_is_what_the_good_callbacks_alone_produce(
    plans: list[tuple[bool, list[Op]]], path: int, is_async: bool, initial: dict[str, Any]
) -> None:
    runner = CallbackRunner(
        [make_callback(ops, is_async) for _, ops in plans],
        error_policy="continue",
        data=initial,
        **PATHS[path],
    )
    try:
        asyncio.run(runner.run("pre_download", None))
    finally:
        runner.close()
    expected = dict(initial)
    for is_good, ops in plans:
        if is_good:
            model(ops, expected)
    assert dict(runner.data) == expected
    bad = [i for i, (is_good, _) in enumerate(plans) if not is_good]
    assert [f.index for f in runner.errors] == bad
    assert all(isinstance(f.error, CallbackReturnError) for f in runner.errors)
    if runner.tracing:
        assert all(e.touched == () for e in runner.trace if e.outcome == "error")
