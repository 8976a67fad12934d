"""An example downstream property test: your callback, checked with Hypothesis against the
reference runner, using ``pytest_raycallbacks.strategies``.

Copy it next to your callback, point ``CALLBACK`` at your import path, and run
``pytest test_downstream_properties.py``. Each test states a property your callback must
have whatever the config, the phases, the shared ``data`` and the other callbacks in the
chain. (Here the callback is ``add_engine_flag`` from ``pytest_raycallbacks.sample_callbacks``:
in ``pre_engine_init`` it adds ``sample_flag=True`` to ``extra_init_kwargs``, keeping what
was there.)

This file is run by ``tests/strategies/test_downstream_example.py`` so it cannot rot.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_raycallbacks import strategies as rcs
from reference_runner import (
    PHASES,
    CallbackReturnError,
    CallbackRunner,
    LLMConfig,
    load_callback,
)

CALLBACK = "pytest_raycallbacks.sample_callbacks:add_engine_flag"  # <- your callback here

#: Small and quick; raise max_examples in CI (or use a Hypothesis settings profile).
EXAMPLES = settings(max_examples=25, deadline=None)


def run(callbacks: list[Any], config: LLMConfig, phases: list[str], data: dict[str, Any]) -> Any:
    """Run ``phases`` in order on a fresh runner; return it."""
    runner = CallbackRunner(callbacks, data=data, trace=True)
    asyncio.run(runner.run_all(config, phases))
    return runner


@EXAMPLES
@given(
    config=rcs.llm_configs(callbacks=st.just([CALLBACK])),
    phases=rcs.phase_sequences(include_unknown=True),
    data=rcs.data_dicts(valid=True),
)
def test_survives_any_lifecycle_and_leaves_the_config_alone(
    config: LLMConfig, phases: list[str], data: dict[str, Any]
) -> None:
    """Through every phase, with future phase names mixed in and any valid starting data,
    it never raises, never touches the config, and its flag reaches the engine kwargs."""
    before = config.model_dump()
    runner = run([load_callback(spec) for spec in config.callbacks], config, phases, data)
    assert config.model_dump() == before
    assert runner.data["extra_init_kwargs"]["sample_flag"] is True
    assert runner.key_origins()["extra_init_kwargs"].phase == "pre_engine_init"


@EXAMPLES
@given(
    others=st.lists(rcs.callback_scripts(returns="mapping"), max_size=3),
    phase=rcs.phases(include_unknown=True),
)
def test_keeps_what_earlier_callbacks_put_in_extra_init_kwargs(
    others: list[rcs.CallbackScript], phase: str
) -> None:
    """Whatever well-behaved callbacks ran before it, it adds its flag to the engine kwargs
    they left instead of replacing them (the shallow merge would otherwise erase them)."""
    mine = load_callback(CALLBACK)
    runner = CallbackRunner([s.build() for s in others] + [mine])
    data = runner.run_sync(phase, None)
    left: dict[str, Any] = {}
    for script in others:
        left.update(script.return_for(phase) or {})
    if phase == "pre_engine_init":
        assert data["extra_init_kwargs"] == {
            **left.get("extra_init_kwargs", {}),
            "sample_flag": True,
        }
    else:
        assert dict(data) == left


@EXAMPLES
@given(item=rcs.invalid_reserved_items(), phase=st.sampled_from(PHASES))
def test_a_neighbour_returning_a_bad_reserved_value_is_stopped_before_mine(
    item: tuple[str, Any], phase: str
) -> None:
    """If the callback before mine returns a reserved key of the wrong type, the runner
    stops there with a ``CallbackReturnError`` naming the key, and mine never sees it."""
    seen: list[str] = []
    mine = load_callback(CALLBACK)

    def spy(phase: str, config: Any, data: dict[str, Any]) -> Any:
        seen.append(phase)
        return mine(phase, config, data)

    runner = CallbackRunner([lambda p, c, d: dict([item]), spy])
    with pytest.raises(CallbackReturnError) as info:
        runner.run_sync(phase, None)
    assert info.value.key == item[0]
    assert seen == []
