"""Helpers for the strategy tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample
from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

#: Generate only (no shrinking, no example database): "can it produce this?" is cheap.
_SEARCH = settings(
    max_examples=2000,
    phases=[Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def reaches(strategy: SearchStrategy[T], condition: Callable[[T], Any]) -> T:
    """An example of ``strategy`` satisfying ``condition``; fails the test if none turns
    up in 2,000 tries."""
    try:
        return find(strategy, condition, settings=_SEARCH)
    except NoSuchExample:
        raise AssertionError(
            f"{strategy!r} never generated a value satisfying the condition"
        ) from None
