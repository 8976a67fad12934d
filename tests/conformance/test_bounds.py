"""Bounds on user code: the deadline helper, ``initialize_node`` bounded as a whole, halted
callbacks, the run's budget (docs/design.md §Bounds on user code)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from conformance import bounds
from conformance.bench import Bench
from conformance.bounds import CheckNotRun, RunBudget, deadline_passed, import_refused
from conformance.context import Settings
from conformance.deadline import DeadlineExceeded, call_with_deadline
from conformance.harness import InitializeTimeoutError, run_scenario
from conformance.subject import Subject
from pytest_raycallbacks.kit.clusters import FakeCheckCluster
from reference_runner import TINY_MODEL_PATH, CallbackLoadError, LLMConfig


def test_call_with_deadline_returns_raises_or_gives_up_in_time() -> None:
    assert call_with_deadline(lambda: 42, 1.0, what="the answer") == 42
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["x"], 1.0, what="a lookup")
    never = threading.Event()
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"waiting did not finish within 0\.2 s"):
        call_with_deadline(never.wait, 0.2, what="waiting")
    assert time.monotonic() - start < 1.0
    never.set()


def test_a_constructor_may_ask_for_its_event_loop_on_the_deadline_thread() -> None:
    loop = call_with_deadline(asyncio.get_event_loop, 1.0, what="a loop", with_event_loop=True)
    assert not loop.is_closed()
    loop.close()


class _Blocks(Mapping[str, Any]):
    """A returned mapping that blocks when the runner reads it: no per-call bound covers
    reading what a call returned, the bound on the whole run does."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        threading.Event().wait()
        return iter(())


def test_initialize_node_is_bounded_as_a_whole_and_says_where_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bounds, "SCENARIO_OVERHEAD_S", 0.5)

    def callback(phase: str, config: Any, data: dict[str, Any]) -> Any:
        return _Blocks() if phase == "pre_download" else None

    start = time.monotonic()
    run = run_scenario(
        FakeCheckCluster(),
        callback,
        LLMConfig(model_id=TINY_MODEL_PATH),
        scenario="first lifecycle",
        timeout_s=0.2,
        placement_timeout_s=0.2,
    )
    assert isinstance(run.error, InitializeTimeoutError)
    assert time.monotonic() - start < run.error.bound_s + 3
    assert "after the callback's call for phase 'pre_download' returned" in str(run.error)


@pytest.fixture
def hanging_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "bounds_subject.py").write_text(
        "import threading\n"
        "def callback(phase, config, data):\n"
        "    if phase == 'pre_download':\n        threading.Event().wait()\n"
        "class Stuck:\n"
        "    def __init__(self):\n        threading.Event().wait()\n"
        "    def __call__(self, phase, config, data):\n        return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "bounds_subject"


def test_a_run_that_overran_halts_the_callback_and_no_run_of_it_follows(
    hanging_module: str,
) -> None:
    subject = Subject(f"{hanging_module}.callback", timeout_s=0.3)
    bench = Bench(subject, FakeCheckCluster(), Settings(timeout_s=0.3))
    first = bench.lifecycle()
    assert first.error is not None
    halt = subject.halted
    assert halt is not None and halt.still_run == (bounds.DEADLINE_RULE,)
    assert "did not finish phase 'pre_download' within 0.3 s" in halt.reason
    with pytest.raises(CheckNotRun, match="may still be running"):
        bench.faulted(bench.faults()[0])
    assert bench.baseline(bench.faults()[0]).error is not None  # runs none of its code


def test_a_constructor_that_hangs_halts_the_callback(hanging_module: str) -> None:
    subject = Subject(f"{hanging_module}.Stuck", timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(CallbackLoadError, match=r"constructing bounds_subject.Stuck\(\) did not"):
        subject.load()
    assert time.monotonic() - start < 2.0
    halt = subject.halted
    assert halt is not None and "loading.no-arg-class" in halt.still_run
    with pytest.raises(CheckNotRun):
        subject.fresh()


def test_a_refused_spec_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "never_imported.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    subject = Subject("never_imported.callback")
    subject.halt(import_refused(subject.spec, "never_imported", 2.0, died=None))
    with pytest.raises(CallbackLoadError, match="did not finish within 2 s"):
        subject.resolve()
    assert subject.source["file"] == str(tmp_path / "never_imported.py")
    assert subject.style == "callback"


def test_the_first_halt_stays_and_names_the_running_check() -> None:
    subject = Subject("x.y")
    subject.running_check = "phases.lifecycle"
    first = subject.halt(deadline_passed("x.y", "first", constructor=False))
    subject.halt(deadline_passed("x.y", "second", constructor=False))
    assert subject.halted is first and first.reason == "first"
    assert "in phases.lifecycle" in first.summary


def test_the_budget_refuses_work_that_does_not_fit_and_skips_excluded_time() -> None:
    now = [100.0]
    budget = RunBudget(10.0, clock=lambda: now[0])
    budget.require(10.0)
    now[0] += 8.0
    budget.exclude(5.0)  # other tests of the session
    assert budget.elapsed_s() == pytest.approx(3.0)
    budget.require(7.0)
    with pytest.raises(CheckNotRun, match="the run reached its bound of 10 s"):
        budget.require(7.5)
    assert budget.reached


def test_a_scenario_the_budget_has_no_room_for_is_not_started(hanging_module: str) -> None:
    subject = Subject(f"{hanging_module}.callback", timeout_s=0.3)
    settings = Settings(timeout_s=0.3, budget=RunBudget(1.0))
    with pytest.raises(CheckNotRun, match="bound of 1 s"):
        Bench(subject, FakeCheckCluster(), settings).lifecycle()
    assert subject.halted is None
