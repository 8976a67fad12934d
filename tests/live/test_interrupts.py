"""Interrupting a certification run leaves nothing behind (a sample of moments; the
exhaustive sweep is ``test_interrupts_sweep.py``).

Each test runs the kit in a subprocess (``--raycallbacks-cluster both``), interrupts it at
a moment of the run, and checks the exit time and status, the certificate and the summary,
and that no process carrying the run's mark (or naming its Ray folder) and no Ray folder is
left (:mod:`interrupt_harness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interrupt_harness import (
    CLEAN_S,
    MOMENTS,
    assert_nothing_left,
    assert_reached,
    assert_reported,
    end_leftovers,
    interrupt_run,
    ray_root,
)

from pytest_raycallbacks.live.processes import SCAN_SUPPORTED

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not SCAN_SUPPORTED, reason="reads processes from /proc"),
]


@pytest.fixture
def root() -> Iterator[Path]:
    with ray_root() as folder:
        yield folder


@pytest.mark.parametrize("moment", ["collecting", "live start", "live checks"])
def test_ctrl_c_reports_and_leaves_nothing(moment: str, tmp_path: Path, root: Path) -> None:
    run = interrupt_run(tmp_path / "project", root, MOMENTS[moment])
    try:
        assert_reached(run)
        assert_reported(run)
        assert_nothing_left(run, at_exit=True)
    finally:
        end_leftovers(run)


def test_sigterm_is_handled_as_ctrl_c(tmp_path: Path, root: Path) -> None:
    run = interrupt_run(tmp_path / "project", root, MOMENTS["fake checks"], ("SIGTERM",))
    try:
        assert_reached(run)
        assert_reported(run)
        assert run.returncode == 2, run.describe()
        assert_nothing_left(run, at_exit=True)
    finally:
        end_leftovers(run)


def test_a_second_ctrl_c_exits_at_once_and_leaves_nothing(tmp_path: Path, root: Path) -> None:
    run = interrupt_run(tmp_path / "project", root, MOMENTS["live start"], ("SIGINT", "SIGINT"))
    try:
        assert_reached(run)
        assert run.returncode == 2, run.describe()
        assert run.exit_s <= 5.0, run.describe()
        assert_nothing_left(run, at_exit=False)
        assert run.seen_after_exit_s is None or run.seen_after_exit_s <= CLEAN_S
    finally:
        end_leftovers(run)


def test_sigkill_leaves_the_keeper_to_end_the_cluster(tmp_path: Path, root: Path) -> None:
    run = interrupt_run(tmp_path / "project", root, MOMENTS["live start"], ("SIGKILL",))
    try:
        assert_reached(run)
        assert run.returncode == -9, run.describe()
        assert_nothing_left(run, at_exit=False)
    finally:
        end_leftovers(run)
