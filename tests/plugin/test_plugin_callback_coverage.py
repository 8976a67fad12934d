"""Callback coverage (issue 6 part 1): what the checks did not reach in the callback's code,
in the summary and the certificate, and coexistence with the user's own coverage run."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.coverage.measurer import CoverageMeasurer, other_measurement
from pytest_raycallbacks.coverage.report import branch_hints, function_lines, ranges

FAKE = ("--raycallbacks-cluster", "fake")
REPORT = ("--raycallbacks-report", "cert.json")
# Our measurement never starts under another tracer: when this suite itself runs under
# coverage (pytest-cov, `coverage run`), the in-process runs can only show the notice.
measured_here = pytest.mark.skipif(
    sys.gettrace() is not None, reason="this test session is itself traced (coverage?)"
)

CALLBACKS = """
def dead(phase, config, data):
    if phase == "pre_init":
        return {"x": 1}
    return None


def full(phase, config, data):
    if phase == "pre_engine_init":
        return {"extra_init_kwargs": {"max_model_len": 4096}}
    return None


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, phase, config, data):
        self.calls += 1
        return _helper(phase)


def _helper(phase):
    if phase == "post_initialization":
        return {"counting.done": True}
    return None
"""


@pytest.fixture
def callbacks(project: pytest.Pytester) -> pytest.Pytester:
    project.makepyfile(cbs=CALLBACKS)
    return project


def certify(project: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = project.runpytest_inprocess(*FAKE, *REPORT, *args)
    cert = json.loads((project.path / "cert.json").read_text())
    return result, {c["spec"]: c for c in cert["callbacks"]}


@measured_here
def test_a_dead_branch_under_a_misspelt_phase_is_reported(callbacks: pytest.Pytester) -> None:
    import coverage

    result, cert = certify(callbacks, "--raycallbacks-conformance", "cbs.dead")
    cov = cert["cbs.dead"]["coverage"]
    assert cov["measured"] is True
    assert Path(cov["file"]) == callbacks.path / "cbs.py"
    # only dead()'s body counts (lines 2-4), not the other callbacks of the module
    assert (cov["statements"], cov["missing_lines"]) == (3, [3])
    assert (cov["branches"], cov["branches_missing"]) == (2, [[2, 3]])
    assert cov["percent"] == pytest.approx(60.0)
    assert "'pre_init', a phase name the runner never emits" in cov["hints"][0]
    assert "did you mean 'pre_initialization'" in cov["hints"][0]
    out = result.stdout.str()
    assert "    coverage of cbs.py: 60% (3 statements, 2 branches of its code)" in out
    assert "        missed lines: 3" in out
    assert "        missed branches: 2->3" in out
    # our tracer is gone and no measurement is left current
    assert sys.gettrace() is None
    assert coverage.Coverage.current() is None


@measured_here
def test_a_fully_exercised_callback_is_at_100_percent(callbacks: pytest.Pytester) -> None:
    result, cert = certify(callbacks, "--raycallbacks-conformance", "cbs.full")
    assert result.ret == 0
    cov = cert["cbs.full"]["coverage"]
    assert cov["percent"] == 100.0
    assert cov["missing_lines"] == cov["branches_missing"] == cov["hints"] == []
    assert "coverage of cbs.py: 100% (3 statements, 2 branches of its code)" in result.stdout.str()
    assert "missed lines" not in result.stdout.str()


@measured_here
def test_a_class_counts_its_methods_and_the_helpers_they_call(callbacks: pytest.Pytester) -> None:
    _, cert = certify(callbacks, "--raycallbacks-conformance", "cbs:Counting")
    cov = cert["cbs:Counting"]["coverage"]
    # __init__ (1), __call__ (2), _helper (3 statements, 2 branches): all reached
    assert (cov["statements"], cov["branches"], cov["percent"]) == (6, 2, 100.0)


def test_no_measurement_with_the_plugin_blocked(callbacks: pytest.Pytester) -> None:
    result, cert = certify(
        callbacks, "--raycallbacks-conformance", "cbs.full", "-p", "no:raycallbacks-coverage"
    )
    assert result.ret == 0
    assert cert["cbs.full"]["coverage"] is None
    assert "coverage" not in result.stdout.str().split("raycallbacks conformance")[1]


def test_without_coverage_installed_one_line_says_so(
    callbacks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "coverage", None)  # `import coverage` raises ImportError
    result, cert = certify(callbacks, "--raycallbacks-conformance", "cbs.full")
    assert result.ret == 0
    assert cert["cbs.full"]["coverage"] == {
        "measured": False,
        "reason": "coverage.py is not installed (pip install coverage)",
    }
    result.stdout.fnmatch_lines(
        ["    callback coverage not measured: coverage.py is not installed*"]
    )


def _user_figures(project: pytest.Pytester, *kit_args: str) -> tuple[str, dict[str, Any]]:
    """Run ``coverage run --branch -m pytest test_user.py --raycallbacks-...`` and return
    pytest's output and the user's JSON figures for cbs.py."""
    data = project.path / ".coverage"
    data.unlink(missing_ok=True)
    run = project.run(
        sys.executable, "-m", "coverage", "run", "--branch", "-m", "pytest", "-p",
        "no:cacheprovider", "test_user.py", *FAKE, *kit_args, timeout=120,
    )  # fmt: skip
    project.run(
        sys.executable, "-m", "coverage", "json", "-o", "user.json", "--include=cbs.py", "-q"
    )
    report = json.loads((project.path / "user.json").read_text())
    return run.stdout.str(), report["files"]["cbs.py"]


def test_under_coverage_run_the_users_figures_are_untouched(callbacks: pytest.Pytester) -> None:
    callbacks.makepyfile(
        test_user="import cbs\n\ndef test_dead():\n    assert cbs.dead('x', None, {}) is None\n"
    )
    # the user's test and a few checks (enough to run the callback): keeps the test fast
    kit = ("--raycallbacks-conformance", "cbs.full", *REPORT, "-k", "test_dead or phases")
    out, with_kit = _user_figures(callbacks, *kit)
    cert = json.loads((callbacks.path / "cert.json").read_text())
    _, without_ours = _user_figures(callbacks, *kit, "-p", "no:raycallbacks-coverage")
    assert with_kit == without_ours
    assert (
        "    callback coverage not measured: another coverage measurement is active "
        "(coverage.py " in out
    )
    assert cert["callbacks"][0]["coverage"]["measured"] is False
    assert "another coverage measurement is active" in cert["callbacks"][0]["coverage"]["reason"]


# ---------------------------------------------------------------------- units


def test_other_measurement_sees_a_foreign_tracer() -> None:
    before = sys.gettrace()

    def tracer(*args: Any) -> None:
        return None

    sys.settrace(tracer)
    try:
        reason = other_measurement()
    finally:
        sys.settrace(before)
    assert reason is not None and reason.startswith("another coverage measurement is active")


@measured_here
def test_the_collector_is_built_without_coveragepys_stack_walk_and_measures(
    tmp_path: Path,
) -> None:
    import coverage
    import coverage.collector

    module = tmp_path / "measured_cb.py"
    module.write_text("def cb(x):\n    if x:\n        return 1\n    return 2\n")
    namespace: dict[str, Any] = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    original = coverage.collector.short_stack
    cov = coverage.Coverage(data_file=None, branch=True, config_file=False, include=[str(module)])
    CoverageMeasurer(lambda spec: None)._start(cov)  # type: ignore[arg-type,return-value]
    try:
        namespace["cb"](True)
    finally:
        cov.stop()
    assert coverage.collector.short_stack is original  # put back at once
    assert "pytest-raycallbacks" in cov._collector.origin  # no inspect.stack() taken
    assert (2, 3) in (cov.get_data().arcs(str(module)) or set())


def test_ranges_and_function_lines() -> None:
    assert ranges([9, 1, 2, 3, 7, 10]) == "1-3, 7, 9-10"
    source = textwrap.dedent(
        """\
        import os
        X = 1
        def f(a):
            '''doc'''
            return a
        g = lambda p: p
        """
    )
    assert function_lines(source) == {4, 5, 6}


def test_hints_name_phases_and_near_misses() -> None:
    source = textwrap.dedent(
        """\
        def cb(phase, config, data):
            if phase == "pre_engine_init" and data.get("k"):
                return {}
            if phase == "post_placement":
                return {}
            if data.get("x") == "y":
                return {}
        """
    )
    hints = branch_hints(source, [(2, 3), (4, 5), (6, 7)])
    assert len(hints) == 2
    assert hints[0].startswith("line 2: under a comparison with phase 'pre_engine_init'")
    assert "'post_placement', a phase name the runner never emits" in hints[1]
    assert "did you mean 'post_placement_group'" in hints[1]
