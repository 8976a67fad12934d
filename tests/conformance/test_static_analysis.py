"""conformance.static: the phase names a callback compares against, and how it can exit."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from conformance.static import PhaseName, exits, phase_names

HANDLED = {"pre_init": 1, "post_download": 2}
ALIASES = ("pre_download", "startup")


def equality(phase: str, config: Any, data: dict[str, Any]) -> None:
    if phase == "pre_init" or "post_model_download" == phase:  # noqa: SIM300 - both orders
        return


def membership(phase: str, config: Any, data: dict[str, Any]) -> None:
    if phase in ("pre_download", "pre_warmup") or phase not in ALIASES:
        return


def dispatch(phase: str, config: Any, data: dict[str, Any]) -> Any:
    return HANDLED.get(phase)


def prefixes(stage: str, config: Any, data: dict[str, Any]) -> None:
    if stage.startswith("before_") or stage.endswith("_initialization"):
        return


def matching(phase: str, config: Any, data: dict[str, Any]) -> None:
    match phase:
        case "pre_engine_init" | "post_engine_start":
            return


class Stateful:
    def __init__(self, device: str = "cuda") -> None:
        if device == "tpu":  # not a phase: __init__'s parameter is not the phase
            raise ValueError(device)

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> None:
        self._handle(phase)

    def _handle(self, phase: str) -> None:
        if phase == "post_init":
            return


def exiting(phase: str, config: Any, data: dict[str, Any]) -> None:
    if phase == "x":
        sys.exit(1)
    if phase == "y":
        raise KeyboardInterrupt


def names(obj: Any) -> set[tuple[str, str, bool]]:
    return {(n.name, n.how, n.emitted) for n in phase_names(obj)}


@pytest.mark.parametrize(
    ("callback", "expected"),
    [
        (equality, {("pre_init", "equals", False), ("post_model_download", "equals", False)}),
        (
            membership,
            {
                ("pre_download", "equals", True),
                ("pre_warmup", "equals", False),
                ("startup", "equals", False),
            },
        ),
        (dispatch, {("pre_init", "equals", False), ("post_download", "equals", True)}),
        (prefixes, {("before_", "prefix", False), ("_initialization", "suffix", True)}),
        (
            matching,
            {("pre_engine_init", "equals", True), ("post_engine_start", "equals", False)},
        ),
        (Stateful(), {("post_init", "equals", False)}),
        (
            lambda phase, config, data: 1 if phase == "pre_init" else None,
            {("pre_init", "equals", False)},
        ),
    ],
)
def test_phase_names_compared_against(callback: Any, expected: set[Any]) -> None:
    assert names(callback) == expected


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("pre_init", "pre_initialization"),
        ("post_init", "post_initialization"),
        ("post_model_download", "post_download"),
        ("pre_engine", "pre_engine_init"),
        ("PRE_DOWNLOAD", "pre_download"),
    ],
)
def test_the_closest_real_phase(name: str, closest: str) -> None:
    assert PhaseName(name, "equals", "").closest == closest


def test_exits_and_base_exceptions_are_found_with_their_line() -> None:
    found = exits(exiting)
    assert [e.what for e in found] == ["sys.exit()", "raise KeyboardInterrupt"]
    assert all(e.source_location.startswith(__file__) for e in found)
    assert exits(equality) == []
