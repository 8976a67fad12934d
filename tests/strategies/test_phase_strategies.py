"""The phase strategies generate what they claim."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rcs_test_helpers import reaches

from pytest_raycallbacks import strategies as rcs
from reference_runner import PHASES

FAST = settings(max_examples=50, deadline=None)


@FAST
@given(rcs.known_phases())
def test_known_phases_are_phases(phase: str) -> None:
    assert phase in PHASES


@FAST
@given(rcs.unknown_phases())
def test_unknown_phases_are_never_phases(phase: str) -> None:
    assert isinstance(phase, str) and phase not in PHASES


def test_unknown_phases_include_near_misses_and_future_names() -> None:
    for wanted in ("PRE_DOWNLOAD", "pre-download", "pre_download ", "post_init", ""):
        assert reaches(rcs.unknown_phases(), lambda p, w=wanted: p == w) == wanted
    reaches(rcs.unknown_phases(), lambda p: p.startswith("post_") and p[5:].isalpha())


@FAST
@given(rcs.phases())
def test_phases_default_to_known(phase: str) -> None:
    assert phase in PHASES


def test_phases_with_unknown_mix_both() -> None:
    mixed = rcs.phases(include_unknown=True)
    assert reaches(mixed, lambda p: p in PHASES) in PHASES
    assert reaches(mixed, lambda p: p not in PHASES) not in PHASES


@FAST
@given(rcs.phase_sequences(max_unknown=3))
def test_phase_sequences_keep_the_order(sequence: list[str]) -> None:
    assert [p for p in sequence if p in PHASES] == list(PHASES)
    assert len(sequence) - len(PHASES) <= 3


@FAST
@given(st.data())
def test_phase_sequences_without_unknown_are_the_phases(data: st.DataObject) -> None:
    assert data.draw(rcs.phase_sequences(include_unknown=False)) == list(PHASES)
    assert data.draw(rcs.phase_sequences(max_unknown=0)) == list(PHASES)


def test_phase_sequences_insert_unknown_names_anywhere() -> None:
    first = reaches(rcs.phase_sequences(), lambda s: s[0] not in PHASES)
    last = reaches(rcs.phase_sequences(), lambda s: s[-1] not in PHASES)
    assert first[0] not in PHASES and last[-1] not in PHASES
