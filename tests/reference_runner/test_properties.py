"""Hypothesis properties of the runner and the loader."""

from __future__ import annotations

import asyncio
import itertools
import keyword
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_runner import CallbackReturnError, CallbackRunner, load_callback
from reference_runner.reserved import RESERVED_KEY_SET

plain_keys = st.text(min_size=1, max_size=6).filter(lambda k: k not in RESERVED_KEY_SET)
values = st.one_of(
    st.none(), st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2)
)
returns = st.one_of(st.none(), st.dictionaries(plain_keys, values, max_size=4))
phases = st.text(min_size=1, max_size=12)


def returning(value: Any) -> Any:
    return lambda phase, config, data: value


@given(st.lists(st.lists(returns, min_size=1, max_size=5), min_size=1, max_size=4), phases)
def test_data_is_the_left_fold_of_the_returned_mappings(
    rounds: list[list[dict[str, Any] | None]], phase: str
) -> None:
    """Per phase, each callback in order; data == fold of dict.update over every return."""
    width = max(len(r) for r in rounds)
    table = [r + [None] * (width - len(r)) for r in rounds]
    calls = iter(itertools.chain.from_iterable(table))
    runner = CallbackRunner([lambda p, c, d: next(calls) for _ in range(width)], trace=True)
    expected: dict[str, Any] = {}
    for row in table:
        asyncio.run(runner.run(phase, None))
        for value in row:
            expected.update(value or {})
    assert dict(runner.data) == expected
    assert len(runner.trace) == width * len(table)


non_mappings = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.sets(st.integers(), max_size=3),
)


@given(non_mappings, phases, st.integers(min_value=0, max_value=3))
def test_any_non_mapping_return_raises_naming_callback_and_phase(
    value: Any, phase: str, position: int
) -> None:
    def culprit(p: str, c: Any, d: dict[str, Any]) -> Any:
        return value

    callbacks: list[Any] = [returning(None)] * position + [culprit]
    with pytest.raises(CallbackReturnError) as info:
        asyncio.run(CallbackRunner(callbacks).run(phase, None))
    assert info.value.phase == phase
    assert f"#{position}" in str(info.value) and "culprit" in str(info.value)
    assert repr(phase) in str(info.value)


# Operations a callback may perform on data: return keys, write in place, delete in place.
operations = st.lists(
    st.tuples(st.sampled_from(["return", "set", "delete"]), st.sampled_from("abcde")),
    max_size=4,
)


@given(st.lists(operations, min_size=1, max_size=5))
def test_trace_replays_to_the_final_keys(per_callback: list[list[tuple[str, str]]]) -> None:
    """Applying each entry's added/removed to a key set reproduces data's keys, and every
    change the trace reports really happened."""

    def make(ops: list[tuple[str, str]]) -> Any:
        def callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
            returned: dict[str, Any] = {}
            for op, key in ops:
                if op == "return":
                    returned[key] = object()
                elif op == "set":
                    data[key] = object()
                else:
                    data.pop(key, None)
            return returned or None

        return callback

    runner = CallbackRunner([make(ops) for ops in per_callback], data={"a": 0}, trace=True)
    keys = set(runner.data)
    asyncio.run(runner.run("pre_download", None))
    for entry in runner.trace:
        assert not set(entry.added) & keys, "added keys were absent before"
        assert set(entry.changed) <= keys and set(entry.removed) <= keys
        keys |= set(entry.added)
        keys -= set(entry.removed)
    assert keys == set(runner.data)


_counter = itertools.count()
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and s not in sys.stdlib_module_names
)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identifiers, identifiers, st.booleans())
def test_both_spec_forms_load_the_same_object(
    tmp_path: Path, module: str, attr: str, as_class: bool
) -> None:
    package = f"rcprop{next(_counter)}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    body = (
        f"class {attr}:\n    def __call__(self, phase, config, data):\n        return None\n"
        if as_class
        else f"def {attr}(phase, config, data):\n    return None\n"
    )
    (folder / f"{module}.py").write_text(body)
    sys.path.insert(0, str(tmp_path))
    try:
        dotted = load_callback(f"{package}.{module}.{attr}")
        coloned = load_callback(f"{package}.{module}:{attr}")
        if as_class:
            assert type(dotted) is type(coloned) and type(dotted).__name__ == attr
        else:
            assert dotted is coloned
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]
