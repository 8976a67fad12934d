"""The kit never hangs and never leaves anything behind (docs/design.md §Bounds on user code).

One kit process certifies, side by side, a good callback and seven hostile ones from the bad
corpus: an ``async def`` that blocks its event loop, one that swallows ``CancelledError``,
a synchronous call that never returns, a module whose import never returns, one whose import
ends the interpreter (``os._exit``), a class whose constructor never returns, and a module
whose import never returns only inside pytest (the probe passes it; the kit's own import is
interrupted). The run
must end within a few timeouts with exit status 1 and a certificate, each hostile callback
rejected with its cause named, the good one certified, and no process of the run left
behind. A second run shows the whole-run bound stops a run that reaches it, and a third that
listing the checks imports no spec at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import BAD, GOOD, copy_into

TIMEOUT = "2"
#: Generous: the run takes about 15 s here; a regression that hangs hits this first.
MAX_RUN_S = 120.0
GOOD_SPEC = "good_async.callback"
#: spec -> (the check that fails, text its failure and the summary must show)
HOSTILE = {
    "bad_blocks_event_loop.callback": (
        "errors.within-timeout",
        "the event loop was blocked for more than 2 s inside an async callback: a blocking "
        "call such as time.sleep or a synchronous client inside async def? use await "
        "asyncio.sleep / asyncio.to_thread",
    ),
    "bad_swallows_cancel.callback": (
        "errors.within-timeout",
        "it catches asyncio.CancelledError without re-raising it",
    ),
    "bad_blocks_forever.callback": (
        "errors.within-timeout",
        "the synchronous callback was still running after 2 s",
    ),
    "bad_hangs_on_import.callback": (
        "loading.import-time",
        "importing 'bad_hangs_on_import' did not finish within 2 s: a blocking call at import "
        "time (network, lock, input())? move it into the callback or behind a function",
    ),
    "bad_exits_on_import.callback": (
        "loading.importable",
        "importing 'bad_exits_on_import' ended the interpreter (exited with status 3)",
    ),
    "bad_hangs_in_constructor.Callback": (
        "loading.no-arg-class",
        "constructing bad_hangs_in_constructor.Callback() did not finish within 2 s",
    ),
    "bad_hangs_only_in_pytest.callback": (
        "loading.importable",
        "importing 'bad_hangs_only_in_pytest' did not finish within 2 s and was interrupted, "
        "although a fresh interpreter imported it in time",
    ),
}


@dataclass(frozen=True)
class Finished:
    """A kit process that ended: its pid, status, wall time, output and certificate."""

    pid: int
    returncode: int
    elapsed_s: float
    output: str
    certificate: dict[str, Any]
    leftovers: list[str]

    def callback(self, spec: str) -> dict[str, Any]:
        return next(c for c in self.certificate["callbacks"] if c["spec"] == spec)

    def checks(self, spec: str) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.callback(spec)["checks"]}


def leftovers(pid: int) -> list[str]:
    """Command lines of processes the kit process ``pid`` started that still run: its probe
    server and the probe children forked from it carry ``--owner=<pid>``."""
    marker = f"--owner={pid}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "raycallbacks-probe-server" in cmdline and marker in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def run_kit(cwd: Path, specs: list[str], *options: str, timeout_s: float = 300) -> Finished:
    """Run the kit on the fake cluster in ``cwd`` (a subprocess, as a user does)."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    for spec in specs:
        command += ["--raycallbacks-conformance", spec]
    command += ["--raycallbacks-cluster", "fake", "--raycallbacks-timeout", TIMEOUT]
    command += ["--raycallbacks-report", "cert.json", *options]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    start = time.monotonic()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the kit did not end within {timeout_s:g} s:\n{output[-4000:]}")
    elapsed = time.monotonic() - start
    time.sleep(0.5)  # what the kit ended is reaped by now
    cert = cwd / "cert.json"
    assert cert.exists(), f"no certificate written; output:\n{output[-4000:]}"
    return Finished(
        pid=process.pid,
        returncode=process.returncode,
        elapsed_s=elapsed,
        output=output,
        certificate=json.loads(cert.read_text()),
        leftovers=leftovers(process.pid),
    )


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    project = tmp_path_factory.mktemp("hostile")
    copy_into(project, GOOD / "good_async.py", *(BAD / f"{s.split('.')[0]}.py" for s in HOSTILE))
    return run_kit(project, [*HOSTILE, GOOD_SPEC])


def test_the_run_ends_within_its_bound_with_exit_1_and_a_certificate(
    hostile_run: Finished,
) -> None:
    assert hostile_run.returncode == 1, hostile_run.output[-4000:]
    assert hostile_run.elapsed_s < MAX_RUN_S
    bound = hostile_run.certificate["run"]["bound_s"]
    assert bound >= hostile_run.elapsed_s
    assert f"worst case for this run: {bound:g} s" in hostile_run.output


def test_nothing_of_the_run_is_left_running(hostile_run: Finished) -> None:
    assert hostile_run.leftovers == []
    probe_folders = Path(tempfile.gettempdir()).glob(f"raycallbacks-probes-{hostile_run.pid}-*")
    assert list(probe_folders) == []


@pytest.mark.parametrize("spec", list(HOSTILE))
def test_each_hostile_callback_is_rejected_with_its_cause(hostile_run: Finished, spec: str) -> None:
    rule, cause = HOSTILE[spec]
    entry = hostile_run.callback(spec)
    assert entry["verdict"] == "rejected"
    check = hostile_run.checks(spec)[rule]
    assert check["outcome"] == "failed"
    assert cause in check["failure"]["happened"]
    assert check["failure"]["fix"]
    assert f"FAILED {rule} [" in hostile_run.output
    assert cause in hostile_run.output
    # The kit ran none of its code after the deadline (or import) that stopped it: its
    # remaining checks are "not run", with that reason.
    not_run = [c for c in entry["checks"] if c["outcome"] == "not run"]
    assert not_run, entry["counts"]
    assert all(c["detail"] and cause in c["detail"] for c in not_run)


def test_the_good_callback_of_the_same_run_is_certified(hostile_run: Finished) -> None:
    entry = hostile_run.callback(GOOD_SPEC)
    assert entry["verdict"] == "certified", entry["counts"]
    assert f"{GOOD_SPEC}: CERTIFIED" in hostile_run.output


def test_a_refused_module_is_never_imported_in_the_test_process(hostile_run: Finished) -> None:
    for spec in ("bad_hangs_on_import.callback", "bad_exits_on_import.callback"):
        entry = hostile_run.callback(spec)
        assert entry["file"] is not None and entry["file"].endswith(f"{spec.split('.')[0]}.py")
        assert "was never imported in the test process" in str(
            [c["detail"] for c in entry["checks"]]
        )


def test_a_run_that_reaches_its_bound_stops_and_writes_its_certificate(
    tmp_path: Path,
) -> None:
    (tmp_path / "slow_but_legal.py").write_text(
        "import time\n\ndef callback(phase, config, data):\n    time.sleep(0.3)\n"
    )
    (tmp_path / "conftest.py").write_text(
        "import pytest_raycallbacks.kit.session as session\n"
        "from pytest_raycallbacks.kit.run_bound import RunBound\n\n"
        "session.run_bound = lambda *a, **k: RunBound(bound_s=16.0, parts={'test': 16.0})\n"
    )
    finished = run_kit(tmp_path, ["slow_but_legal.callback"])
    assert finished.returncode == 1
    entry = finished.callback("slow_but_legal.callback")
    assert entry["verdict"] == "incomplete"
    reasons = {c["detail"] for c in entry["checks"] if c["outcome"] == "not run"}
    assert reasons == {"not run: the run reached its bound of 16 s"}
    assert finished.certificate["run"]["bound_s"] == 16.0
    assert "the run reached its bound of 16 s" in finished.output
    took = float(finished.output.split("worst case for this run: 16 s (took ")[1].split(" s")[0])
    assert took <= 16.0
    assert finished.leftovers == []


def test_listing_the_checks_imports_no_spec(tmp_path: Path) -> None:
    copy_into(tmp_path, BAD / "bad_hangs_on_import.py", BAD / "bad_exits_on_import.py")
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--raycallbacks-list-checks",
            "--raycallbacks-conformance",
            "bad_hangs_on_import.callback",
            "--raycallbacks-conformance",
            "bad_exits_on_import.callback",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loading.importable" in done.stdout
    assert time.monotonic() - start < 60
