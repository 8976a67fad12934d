"""Bounding a block that must run on the main thread (conformance.interruptible): the
in-process import of a spec is interrupted once it overran, never hangs the run, and leaves
the process's signal handling as it was."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from conformance.interruptible import RESEND_S, SIGNAL, Overran, interrupt_after

pytestmark = pytest.mark.skipif(SIGNAL is None, reason="no SIGURG on this platform")


def test_a_blocking_wait_is_interrupted_after_the_limit_and_the_handler_put_back() -> None:
    before = signal.getsignal(SIGNAL)
    started = time.monotonic()
    with pytest.raises(Overran, match=r"after 0\.3 s"), interrupt_after(0.3):
        threading.Event().wait()  # a lock nobody releases
    assert 0.25 < time.monotonic() - started < 3
    assert signal.getsignal(SIGNAL) is before


def test_a_sleep_is_interrupted_too() -> None:
    started = time.monotonic()
    with pytest.raises(Overran), interrupt_after(0.2):
        time.sleep(60)
    assert time.monotonic() - started < 3


def test_a_block_that_catches_the_interrupt_is_interrupted_again() -> None:
    caught: list[BaseException] = []

    def hostile() -> None:
        try:
            time.sleep(60)
        except BaseException as exc:  # swallow the interrupt and wait again
            caught.append(exc)
            time.sleep(60)

    started = time.monotonic()
    with pytest.raises(Overran), interrupt_after(0.2):
        hostile()
    assert caught and time.monotonic() - started < 0.2 + RESEND_S + 2


def test_a_block_that_finishes_in_time_is_left_alone_and_a_late_signal_is_harmless() -> None:
    before = signal.getsignal(SIGNAL)
    with interrupt_after(5):
        value = sum(range(1000))
    assert value == 499500
    assert signal.getsignal(SIGNAL) is before
    signal.raise_signal(SIGNAL)  # ignored by default: nothing happens
    time.sleep(0.05)


def test_off_the_main_thread_the_block_runs_unbounded() -> None:
    outcome: list[object] = []

    def work() -> None:
        try:
            with interrupt_after(0.1):
                time.sleep(0.4)
            outcome.append("done")
        except BaseException as exc:
            outcome.append(exc)

    before = signal.getsignal(SIGNAL)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(5)
    assert outcome == ["done"]
    assert signal.getsignal(SIGNAL) is before
