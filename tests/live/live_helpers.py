"""Helpers of the live-cluster tests (a module of its own: test modules import it, and
``conftest`` names are ambiguous across test folders)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def write_module(folder: Path, source: str, prefix: str = "rcbmod") -> str:
    """Write ``source`` as a uniquely named module in ``folder``; return its name.

    Unique names matter: Ray reuses worker processes, which cache imported modules.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def child_env(**changes: str | None) -> dict[str, str]:
    """The environment for a child pytest/python: ours, without xdist's or Ray's address."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "RAYCALLBACKS_", "RAY_"))
        and k not in ("PYTEST_CURRENT_TEST", "CUDA_VISIBLE_DEVICES")
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_pytest(
    folder: Path, *args: str, env: Mapping[str, str], timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest`` in ``folder`` (its own rootdir, no cache) and return it."""
    (folder / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider\nasyncio_default_fixture_loop_scope = function\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", *args],
        cwd=folder,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def read_records(folder: Path) -> list[dict[str, Any]]:
    """JSON records the child tests wrote into ``folder`` (``*.record.json``)."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.record.json"))]


def token_processes(token: str) -> list[Any]:
    """Live processes carrying a cluster's ownership token."""
    from pytest_raycallbacks.live.processes import processes_with_token

    return processes_with_token(token)
