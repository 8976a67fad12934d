"""examples/downstream_project: a team's project whose own tests use the fixtures and whose
pytest.ini names its callbacks, run the way the team runs it (plain ``pytest``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kit_helpers import EXAMPLES

PROJECT = EXAMPLES / "downstream_project"


def test_the_teams_tests_and_the_conformance_suite_pass_together(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--raycallbacks-report",
            "cert.json",
            "-W",
            "error::pytest_raycallbacks.fake_ray.FakeRayLeakWarning",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "tests/test_team_callbacks.py ..." in done.stdout
    assert "tests/test_team_ray_callbacks.py ." in done.stdout
    cert = json.loads((project / "cert.json").read_text())
    assert {c["spec"]: c["verdict"] for c in cert["callbacks"]} == {
        "team_callbacks.pin_engine_args": "certified",
        "team_callbacks:ReservedPlacement": "certified",
    }
