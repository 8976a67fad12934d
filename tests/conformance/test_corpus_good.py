"""No false positives: good callbacks of every shape, and the source design's examples.

The good corpus (``good_callbacks/``) covers a stateful module-level instance, an async
function, a class path in colon and dot form, one that builds a valid placement group, one
that sets a runtime env, one that takes over with ``skip_default_init`` and one that
dispatches through a table. Each must be ``certified``. Of the source design's examples,
Example 3 (the lambda testing ``"pre_init"``) must be rejected by ``phases.known-names``,
with the closest real phase named; the other three are certified.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kit_helpers import EXAMPLES, GOOD, KitRun, copy_into, corpus, run_kit

ENTRIES = corpus(GOOD)
GOOD_SPECS = [e.spec for e in ENTRIES] + [e.also for e in ENTRIES if e.also]
EXAMPLE_SPECS = {
    "examples.logging_callback.log_initialization": "certified",
    "examples.stateful_callback:CustomInitializationCallback": "certified",
    "examples.full_initialization.custom_full_initialization": "certified",
    "examples.lambda_callback.quick_flag": "rejected",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    project: Path = tmp_path_factory.mktemp("good-project")
    copy_into(project, *[p for p in GOOD.iterdir() if p.suffix == ".py"], EXAMPLES)
    return run_kit(project, [*GOOD_SPECS, *EXAMPLE_SPECS])


@pytest.mark.parametrize("spec", GOOD_SPECS)
def test_good_callbacks_are_certified(spec: str, run: KitRun) -> None:
    callback = run.callback(spec)
    assert callback["verdict"] == "certified", run.failed(spec)
    assert callback["counts"]["failed"] == 0
    assert callback["counts"]["skipped"] == 0
    assert callback["counts"]["not run"] == 0


@pytest.mark.parametrize(("spec", "verdict"), EXAMPLE_SPECS.items())
def test_the_source_examples(spec: str, verdict: str, run: KitRun) -> None:
    assert run.callback(spec)["verdict"] == verdict, run.failed(spec)


def test_example_3_is_rejected_for_pre_init_with_the_real_phase_named(run: KitRun) -> None:
    failed = run.failed("examples.lambda_callback.quick_flag")
    assert set(failed) == {"phases.known-names"}
    happened = failed["phases.known-names"]["failure"]["happened"]
    assert "'pre_init'" in happened
    assert "closest real phase: 'pre_initialization'" in happened
    assert "lambda_callback.py:" in happened


def test_the_run_exits_1_because_one_example_is_rejected(run: KitRun) -> None:
    assert run.returncode == 1
    assert "examples.lambda_callback.quick_flag: REJECTED" in run.output
    assert "examples.logging_callback.log_initialization: CERTIFIED" in run.output
