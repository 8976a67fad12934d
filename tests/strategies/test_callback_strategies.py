"""The callback strategies: every generated callback does what its script says, and the
runner does with each call what :meth:`CallbackScript.expected` says."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rcs_test_helpers import reaches

from pytest_raycallbacks import strategies as rcs
from reference_runner import PHASES, CallbackReturnError, CallbackRunner

FAST = settings(max_examples=40, deadline=None)


def is_async(callback: Any) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        type(callback).__call__
    )


@FAST
@given(rcs.callback_scripts(raises=None, vary_by_phase=True), rcs.phases(include_unknown=True))
def test_the_runner_does_what_the_script_expects(script: rcs.CallbackScript, phase: str) -> None:
    callback = script.build()
    runner = CallbackRunner([callback], data={"before": 1})
    expected = script.expected(phase)
    if expected == "raise":
        assert script.raises is not None
        with pytest.raises(script.raises, match="scripted") as info:
            runner.run_sync(phase, None)
        assert any("in phase" in note for note in info.value.__notes__)
    elif expected == "reject":
        with pytest.raises(CallbackReturnError):
            runner.run_sync(phase, None)
        assert dict(runner.data) == {"before": 1}
    else:
        data = runner.run_sync(phase, None)
        returned = script.return_for(phase)
        assert dict(data) == {"before": 1, **(returned or {})}
    assert callback.calls == [phase]
    assert callback.script is script
    assert is_async(callback) is script.is_async


@FAST
@given(
    rcs.callback_returns("none"), rcs.callback_returns("mapping"), rcs.callback_returns("invalid")
)
def test_return_kinds(none: Any, mapping: Any, invalid: Any) -> None:
    assert none is None
    assert rcs.is_accepted_return(mapping)
    assert not rcs.is_accepted_return(invalid)
    assert invalid is not None


def test_invalid_returns_cover_each_way_to_be_wrong() -> None:
    invalid = rcs.callback_returns("invalid")
    reaches(invalid, lambda v: isinstance(v, bool))
    reaches(invalid, lambda v: isinstance(v, list) and len(v) == 1 and isinstance(v[0], tuple))
    reaches(invalid, lambda v: isinstance(v, dict) and any(not isinstance(k, str) for k in v))
    reaches(invalid, lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v))
    reaches(rcs.callback_returns("mapping"), lambda v: not isinstance(v, dict))  # proxy
    assert reaches(rcs.callback_returns(), lambda v: v is None) is None


@FAST
@given(rcs.callbacks(returns="mapping", asynchronous=True, kinds=("instance",)))
def test_callbacks_honour_their_options(callback: rcs.ScriptedCallback) -> None:
    assert is_async(callback) and callback.script.kind == "instance"
    assert callback.script.raises is None
    assert rcs.is_accepted_return(callback.script.returns)
    assert "scripted callback instance" in repr(callback)


@FAST
@given(rcs.callback_scripts(raises=True, asynchronous=False, kinds=("function",)))
def test_raising_scripts_raise_somewhere(script: rcs.CallbackScript) -> None:
    assert script.raises in rcs.ERROR_TYPES
    assert any(script.raises_in(p) for p in PHASES)
    assert script.raise_in is None or script.raise_in <= set(PHASES)
    callback = script.build()
    assert inspect.isfunction(callback) and not is_async(callback)


@FAST
@given(rcs.callback_scripts(returns=st.just({"k": 1}), vary_by_phase=True))
def test_scripts_with_a_strategy_of_returns(script: rcs.CallbackScript) -> None:
    assert script.returns == {"k": 1}
    assert set(script.returns_in) <= set(PHASES)
    assert not any(script.raises_in(p) for p in PHASES)


def test_scripts_reach_every_kind() -> None:
    scripts = rcs.callback_scripts(raises=None)
    for kind in ("function", "instance"):
        for flag in (True, False):
            found = reaches(scripts, lambda s, k=kind, a=flag: s.kind == k and s.is_async == a)
            assert (found.kind, found.is_async) == (kind, flag)
    reaches(scripts, lambda s: s.raises is not None and s.raise_in is None)


@FAST
@given(
    st.lists(rcs.callback_scripts(returns="mapping"), min_size=1, max_size=4), rcs.phase_sequences()
)
def test_data_is_the_fold_of_accepted_returns(
    scripts: list[rcs.CallbackScript], phases: list[str]
) -> None:
    built = [s.build() for s in scripts]
    runner = CallbackRunner(built)
    asyncio.run(runner.run_all(None, phases))
    expected: dict[str, Any] = {}
    for phase in phases:
        for script in scripts:
            expected.update(script.return_for(phase) or {})
    assert dict(runner.data) == expected
    assert all(cb.calls == phases for cb in built)
