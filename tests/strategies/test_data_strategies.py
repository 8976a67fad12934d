"""The ``data`` strategies: valid values are accepted, invalid ones rejected, by the
validators (``reserved_key_problem``) and by ``CallbackRunner`` itself."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rcs_test_helpers import reaches

from pytest_raycallbacks import strategies as rcs
from reference_runner import CallbackReturnError, CallbackRunner
from reference_runner.reserved import RESERVED_KEY_SET, is_placement_group, reserved_key_problem

FAST = settings(max_examples=40, deadline=None)


def returning(value: Any) -> Any:
    return lambda phase, config, data: value


def writing(key: str, value: Any) -> Any:
    def callback(phase: str, config: Any, data: dict[str, Any]) -> None:
        data[key] = value

    return callback


@FAST
@given(rcs.invalid_reserved_items())
def test_invalid_items_are_rejected_by_the_validator_and_the_runner(item: tuple[str, Any]) -> None:
    key, value = item
    assert reserved_key_problem(key, value) is not None
    for callback in (returning({key: value}), writing(key, value)):
        runner = CallbackRunner([callback])
        with pytest.raises(CallbackReturnError) as info:
            runner.run_sync("pre_initialization", None)
        assert info.value.key == key
        assert info.value.phase == "pre_initialization"


def test_invalid_items_cover_every_reserved_key() -> None:
    for key in RESERVED_KEY_SET:
        assert reaches(rcs.invalid_reserved_items(), lambda item, k=key: item[0] == k)[0] == key
    only = rcs.invalid_reserved_items(keys=["runtime_env"])
    assert reaches(only, lambda item: isinstance(item[1], dict))[0] == "runtime_env"


@FAST
@given(rcs.valid_reserved_items(placement_groups=rcs.placement_group_stand_ins()))
def test_valid_items_are_accepted(item: tuple[str, Any]) -> None:
    key, value = item
    assert key in rcs.CALLBACK_KEYS
    assert reserved_key_problem(key, value) is None
    runner = CallbackRunner([returning({key: value}), writing(key, value)])
    assert runner.run_sync("pre_download", None)[key] is value


@FAST
@given(rcs.data_dicts(valid=True))
def test_valid_data_dicts(data: dict[str, Any]) -> None:
    assert "placement_group" not in data and "download_result" not in data
    assert all(reserved_key_problem(k, v) is None for k, v in data.items())
    runner = CallbackRunner([returning(dict(data))], data=data)
    assert dict(runner.run_sync("pre_initialization", None)) == data


@FAST
@given(rcs.data_dicts(valid=False))
def test_invalid_data_dicts(data: dict[str, Any]) -> None:
    assert any(reserved_key_problem(k, v) is not None for k, v in data.items())
    with pytest.raises(CallbackReturnError):
        CallbackRunner([returning(data)]).run_sync("post_download", None)


def test_data_dicts_either_way_and_with_groups() -> None:
    either = rcs.data_dicts(valid=None)
    reaches(either, lambda d: any(reserved_key_problem(k, v) for k, v in d.items()))
    reaches(either, lambda d: bool(d) and not any(reserved_key_problem(k, v) for k, v in d.items()))
    grouped = reaches(
        rcs.data_dicts(placement_groups=rcs.placement_group_stand_ins()),
        lambda d: "placement_group" in d,
    )
    assert is_placement_group(grouped["placement_group"])
    reaches(rcs.data_dicts(), lambda d: len(set(d) & RESERVED_KEY_SET) == 3)


@FAST
@given(
    rcs.download_choices(as_name=True), rcs.download_choices(as_name=False), rcs.download_choices()
)
def test_download_choices(name: Any, member: Any, either: Any) -> None:
    assert isinstance(name, str)
    assert not isinstance(member, str)
    for value in (name, member, either):
        assert reserved_key_problem("worker_node_download_model", value) is None


def test_reserved_values_refuses_what_it_cannot_generate() -> None:
    with pytest.raises(ValueError, match="not a reserved key"):
        rcs.reserved_values("my_key")
    with pytest.raises(ValueError, match="needs a real group"):
        rcs.reserved_values("placement_group")
    with pytest.raises(ValueError, match="written by the system"):
        rcs.reserved_values("download_result")
    with pytest.raises(ValueError, match="not reserved keys"):
        rcs.invalid_reserved_items(keys=["nope"])
    with pytest.raises(ValueError, match="a callback may set"):
        rcs.valid_reserved_items(keys=["download_result"])


@FAST
@given(rcs.json_values(), rcs.plain_keys())
def test_helpers(value: Any, key: str) -> None:
    assert key not in RESERVED_KEY_SET
    CallbackRunner([returning({key: value})]).run_sync("pre_initialization", None)


@FAST
@given(st.data())
def test_valid_reserved_values_per_key(data: st.DataObject) -> None:
    for key in rcs.CALLBACK_KEYS:
        groups = rcs.placement_group_stand_ins() if key == "placement_group" else None
        value = data.draw(rcs.reserved_values(key, placement_groups=groups))
        assert reserved_key_problem(key, value) is None
