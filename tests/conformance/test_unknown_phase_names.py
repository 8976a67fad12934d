"""``phases.unknown-names``: the generated names, and the check run in one lifecycle.

The names come from :mod:`conformance.future_phases` (fixed seed, bounded count); the check
calls the callback with all of them, interleaved before the six real phases, in a single
``initialize_node`` run on the fake cluster. Callbacks that break only on some kinds of
name (a digit, a ``post_`` prefix, a near miss of a real phase) must still be rejected.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance import Bench, CheckContext, CheckFailed, Settings, Subject, get_check
from conformance.future_phases import FUTURE_NAMES, generated_names, unknown_phase_schedule
from reference_runner import PHASES

PREFIXED = re.compile(r"(pre|post)_[a-z]{2,10}(_[a-z]{2,8})?")
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def test_generated_names_are_fixed_distinct_unknown_and_bounded() -> None:
    names = generated_names(40)
    assert names == generated_names(40)  # fixed seed: every run tries the same names
    assert len(names) == len(set(names)) == 40
    assert not set(names) & set(PHASES)
    assert not set(names) & {n for ns in FUTURE_NAMES.values() for n in ns}
    assert all(IDENTIFIER.fullmatch(n) for n in names)
    assert any(PREFIXED.fullmatch(n) for n in names)
    assert any(not n.startswith(("pre_", "post_")) for n in names)
    assert {"q", "z" + "9_" * 10} <= set(names)  # shortest and longest identifier
    assert generated_names(40, seed=1) != names


def test_the_schedule_puts_names_before_every_real_phase() -> None:
    schedule = unknown_phase_schedule(12)
    assert list(schedule) == list(PHASES)
    assert all(schedule[phase] for phase in PHASES)
    for phase, names in FUTURE_NAMES.items():
        assert schedule[phase][: len(names)] == list(names)
    assert sum(map(len, schedule.values())) == 12 + sum(map(len, FUTURE_NAMES.values()))
    with pytest.raises(ValueError, match="generated must be >= 0"):
        unknown_phase_schedule(-1)


CALLBACKS = """
from reference_runner.phases import PHASES


def ignores(phase, config, data):
    return None


def digits(phase, config, data):
    if any(c.isdigit() for c in phase):
        raise KeyError(phase)


def post_prefix(phase, config, data):
    if phase.startswith("post_") and phase not in PHASES:
        return ["not", "a", "mapping"]


def near_miss(phase, config, data):
    if phase.startswith("pre_initialization") and phase != "pre_initialization":
        raise RuntimeError("pre_initialization ran twice")
"""


@pytest.fixture
def context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], CheckContext]]:
    from pytest_raycallbacks.kit.clusters import FakeCheckCluster

    (tmp_path / "unknown_cbs.py").write_text(CALLBACKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings(cache_dir=str(tmp_path), import_paths=(str(tmp_path),))
    cluster = FakeCheckCluster()

    def make(name: str) -> CheckContext:
        subject = Subject(f"unknown_cbs.{name}", import_paths=(str(tmp_path),))
        return CheckContext(
            subject=subject,
            settings=settings,
            cluster=cluster,
            bench=Bench(subject, cluster, settings),
        )

    yield make
    sys.modules.pop("unknown_cbs", None)


def test_a_callback_that_ignores_unknown_names_passes(
    context: Callable[[str], CheckContext],
) -> None:
    note = get_check("phases.unknown-names").function(context("ignores"))
    assert note is not None and "ignored 28 unknown phase names" in note


@pytest.mark.parametrize(
    ("name", "happened"),
    [
        ("digits", "it raised KeyError"),
        ("post_prefix", "it returned ['not', 'a', 'mapping'] (list)"),
        ("near_miss", "'pre_initialization_v2'"),
    ],
)
def test_a_callback_that_breaks_on_some_unknown_names_is_rejected(
    context: Callable[[str], CheckContext], name: str, happened: str
) -> None:
    with pytest.raises(CheckFailed) as failed:
        get_check("phases.unknown-names").function(context(name))
    assert "called with unknown phase" in failed.value.happened
    assert happened in failed.value.happened
    assert "placed before" in failed.value.happened
