"""An interrupted certification run (docs/design.md §Interrupted runs), on the fake cluster:
SIGTERM stops the run as Ctrl-C does, the certificate is written before the session's
teardown and says what did not run, an interrupt the code under test swallows still stops
the run, and the kit's signal handlers are gone after the run. The live cluster's side
(processes, folders, every moment of a run) is ``tests/live/test_interrupts*.py``."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

#: The check interrupted: its item's name (``raycallbacks::phases::lifecycle[...]``; a
#: dot may stand for the second ``::``), not ``phases::second-lifecycle``.
TARGET = r"phases(::|\.)lifecycle\["
#: A plugin of the project's (``-p interrupter``; the kit's items are outside the project's
#: folder, which a conftest's hooks are limited to): SIGTERM to this process when the target
#: check runs (swallowed by the "code under test" when SWALLOW is set); a session fixture
#: records whether the certificate was there when the session's teardown began.
INTERRUPTER = """
import json, os, re, signal, time
import pytest

SWALLOW = {swallow}


@pytest.fixture(scope="session", autouse=True)
def session_teardown_sees():
    yield
    with open("seen-at-teardown.json", "w") as out:
        json.dump({{"certificate": os.path.exists("cert.json")}}, out)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if re.search(r"{target}", item.nodeid):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            if not SWALLOW:
                raise
    return (yield)
"""
RUN = (
    "--raycallbacks-conformance",
    "mycb.callback",
    "--raycallbacks-cluster",
    "fake",
    "--raycallbacks-report",
    "cert.json",
)


def _run(project: pytest.Pytester, *, swallow: bool) -> tuple[pytest.RunResult, dict[str, Any]]:
    project.makepyfile(interrupter=INTERRUPTER.format(swallow=swallow, target=TARGET))
    result = project.runpytest_subprocess("-p", "interrupter", *RUN, timeout=300)
    return result, json.loads((project.path / "cert.json").read_text())


def _outcomes(cert: dict[str, Any]) -> dict[str, str]:
    (callback,) = cert["callbacks"]
    return {f"{c['id']}[{c['cluster']}]": c["outcome"] for c in callback["checks"]}


def _target(outcomes: dict[str, str]) -> str:
    return next(o for name, o in outcomes.items() if name.startswith("phases.lifecycle"))


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
def test_sigterm_stops_the_run_and_the_check_it_hit_is_not_run(
    project: pytest.Pytester, swallow: bool
) -> None:
    result, cert = _run(project, swallow=swallow)
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output
    outcomes = _outcomes(cert)
    assert _target(outcomes) == "not run", outcomes
    assert "failed" not in outcomes.values(), outcomes
    assert "passed" in outcomes.values(), outcomes  # what ran before is kept
    assert cert["callbacks"][0]["verdict"] == "incomplete"
    assert cert["run"]["exit_status"] == pytest.ExitCode.INTERRUPTED
    assert "mycb.callback: INCOMPLETE" in output
    assert "KeyboardInterrupt" in output


def test_the_certificate_is_written_before_the_sessions_teardown(
    project: pytest.Pytester,
) -> None:
    result, _ = _run(project, swallow=False)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    seen = json.loads((project.path / "seen-at-teardown.json").read_text())
    assert seen == {"certificate": True}


def test_the_kits_signal_handlers_are_restored_after_the_run(project: pytest.Pytester) -> None:
    project.makepyfile(
        handlerprobe="""
        import signal

        def pytest_runtest_call(item):
            with open("handler.txt", "w") as out:
                out.write(getattr(signal.getsignal(signal.SIGTERM), "__module__", "") or "")
        """
    )
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    project.syspathinsert()
    result = project.runpytest_inprocess("-p", "handlerprobe", *RUN)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    if before[1] is signal.SIG_DFL:  # the kit takes over a SIGTERM at its default only
        assert (project.path / "handler.txt").read_text() == "pytest_raycallbacks.interrupts"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
