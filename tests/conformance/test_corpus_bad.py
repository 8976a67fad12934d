"""The corpus of deliberately broken callbacks: each is rejected, naming the rule it breaks.

Every module under ``bad_callbacks/`` is written the way users really get callbacks wrong
and declares the rule it breaks (``BREAKS``). They are certified together, as a user would
from their own folder (one pytest process per set of options), and each must come out
``rejected`` (exit status 1) with its rule among the failed checks, the failure saying what
was expected, what happened and how to fix it, and the summary naming the rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kit_helpers import BAD, CorpusEntry, KitRun, copy_into, corpus, run_kit

ENTRIES = corpus(BAD)
RULES_COVERED_ELSEWHERE = {
    # loading.fresh-interpreter needs a conftest.py in the user's folder:
    # test_fresh_interpreter.py builds that project.
    "loading.fresh-interpreter",
    # loading.shippable fails only where Ray pickles the object (a CallbackBase instance;
    # a spec gets advice): test_callbackbase_kit.py's Unpicklable class.
    "loading.shippable",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], KitRun]:
    """One kit run per distinct set of options, over all bad callbacks that need it."""
    project = tmp_path_factory.mktemp("bad-project")
    copy_into(project, *[p for p in BAD.iterdir() if p.name != "__pycache__"])
    by_options: dict[tuple[str, ...], list[CorpusEntry]] = {}
    for entry in ENTRIES:
        by_options.setdefault(entry.options, []).append(entry)
    results = {}
    for options, entries in by_options.items():
        folder = project / ("run-" + "-".join(options).replace("-", "") if options else "run")
        folder.mkdir()
        copy_into(folder, *[p for p in project.iterdir() if p.name.startswith(("bad_", "shadow"))])
        results[options] = run_kit(folder, [e.spec for e in entries], options)
    return results


def test_the_corpus_has_at_least_25_callbacks_and_covers_every_rule() -> None:
    from conformance import CATALOGUE

    assert len(ENTRIES) >= 25
    live_only = {
        c.id for c in CATALOGUE if c.runs_on == "each-cluster" and "fake" not in c.clusters
    }
    # CallbackBase-only rules: tests/conformance/test_callbackbase_kit.py
    only_callbackbase = {c.id for c in CATALOGUE if not c.applies_to("callback")}
    covered = {e.breaks for e in ENTRIES} | RULES_COVERED_ELSEWHERE
    assert {c.id for c in CATALOGUE} - covered - live_only - only_callbackbase == set()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.module for e in ENTRIES])
def test_rejected_with_its_rule(entry: CorpusEntry, runs: dict[tuple[str, ...], KitRun]) -> None:
    run = runs[entry.options]
    assert run.returncode == 1, run.output[-3000:]
    callback = run.callback(entry.spec)
    assert callback["verdict"] == "rejected"
    failed = run.failed(entry.spec)
    assert entry.breaks in failed, f"{entry.spec}: failed {sorted(failed)}, expected {entry.breaks}"
    failure = failed[entry.breaks]["failure"]
    assert failure is not None
    assert failure["expected"] and failure["happened"] and failure["fix"]
    assert f"FAILED {entry.breaks} [" in run.output


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.module for e in ENTRIES])
def test_the_certificate_records_the_callback_file(
    entry: CorpusEntry, runs: dict[tuple[str, ...], KitRun]
) -> None:
    callback = runs[entry.options].callback(entry.spec)
    if callback["file"] is not None:
        assert Path(callback["file"]).name in (f"{entry.module}.py", "__init__.py")
        assert len(callback["sha256"]) == 64
