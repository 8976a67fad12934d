"""Ctrl-C every 2 s over the first 30 s of a certification run (``--raycallbacks-cluster
both``): each run exits within 30 s, reports what finished, and leaves nothing behind.

Exhaustive and slow (about 15 runs of the kit), so marked ``sweep`` and skipped unless
``RAYCALLBACKS_SWEEP=1``: ``RAYCALLBACKS_SWEEP=1 pytest -m sweep -rA`` (each run's line is
printed). Before the kit has started (pytest still importing) there is nothing to report:
such a run only has to exit and leave nothing. A run that finished before its moment must
have certified the callback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from interrupt_harness import (
    EXIT_S,
    assert_nothing_left,
    assert_reported,
    at_second,
    end_leftovers,
    interrupt_run,
    ray_root,
)

from pytest_raycallbacks.live.processes import SCAN_SUPPORTED

pytestmark = [
    pytest.mark.live,
    pytest.mark.sweep,
    pytest.mark.skipif(not SCAN_SUPPORTED, reason="reads processes from /proc"),
    pytest.mark.skipif(
        os.environ.get("RAYCALLBACKS_SWEEP") != "1",
        reason="the interrupt sweep takes ~10 min: RAYCALLBACKS_SWEEP=1 pytest -m sweep runs it",
    ),
]


@pytest.fixture
def root() -> Iterator[Path]:
    with ray_root() as folder:
        yield folder


@pytest.mark.parametrize("second", range(2, 31, 2))
def test_ctrl_c_at_every_moment(second: int, tmp_path: Path, root: Path) -> None:
    run = interrupt_run(tmp_path / "project", root, at_second(second))
    try:
        if run.kit_started or not run.reached:  # interrupted while it ran, or finished first
            assert_reported(run)
        else:  # interrupted while pytest started: nothing to report yet
            assert run.exit_s <= EXIT_S, run.describe()
        assert_nothing_left(run, at_exit=True)
    finally:
        end_leftovers(run)
