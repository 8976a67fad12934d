"""Running the kit as a user does: a folder of callback modules, a pytest process there.

Each corpus module declares ``SPEC`` (the spec to certify), ``BREAKS`` (the rule it breaks,
bad corpus only) and optionally ``OPTIONS`` (extra command-line options it needs).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
BAD = HERE / "bad_callbacks"
GOOD = HERE / "good_callbacks"
EXAMPLES = HERE.parents[1] / "examples"


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus module: its spec, the rule it breaks (bad corpus) and its options."""

    module: str
    spec: str
    breaks: str | None
    options: tuple[str, ...]
    also: str | None = None


def _constants(path: Path) -> dict[str, Any]:
    tree = ast.parse(path.read_text())
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("SPEC", "BREAKS", "OPTIONS", "ALSO"):
                found[target.id] = ast.literal_eval(node.value)
    return found


def corpus(folder: Path) -> list[CorpusEntry]:
    """Every module (or package) of ``folder`` that declares a ``SPEC``."""
    entries = []
    for path in sorted(folder.iterdir()):
        source = path / "__init__.py" if path.is_dir() else path
        if source.suffix != ".py" or not source.exists():
            continue
        values = _constants(source)
        if "SPEC" in values:
            entries.append(
                CorpusEntry(
                    module=path.stem,
                    spec=values["SPEC"],
                    breaks=values.get("BREAKS"),
                    options=tuple(values.get("OPTIONS", ())),
                    also=values.get("ALSO"),
                )
            )
    return entries


def copy_into(dest: Path, *sources: Path) -> None:
    """Copy modules and packages into ``dest`` (a user's project folder)."""
    for source in sources:
        if source.is_dir():
            shutil.copytree(
                source, dest / source.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, dest / source.name)


@dataclass(frozen=True)
class KitRun:
    """A finished ``pytest --raycallbacks-conformance`` process and its certificate."""

    returncode: int
    output: str
    certificate: dict[str, Any]

    def callback(self, spec: str) -> dict[str, Any]:
        return next(c for c in self.certificate["callbacks"] if c["spec"] == spec)

    def failed(self, spec: str) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.callback(spec)["checks"] if c["outcome"] == "failed"}


def run_kit(
    cwd: Path, specs: Iterable[str], options: Sequence[str] = (), timeout: float = 600
) -> KitRun:
    """Run the kit in a fresh process in ``cwd`` on the fake cluster, with a certificate."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    for spec in specs:
        command += ["--raycallbacks-conformance", spec]
    command += ["--raycallbacks-cluster", "fake", "--raycallbacks-report", "cert.json", *options]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    cert_path = cwd / "cert.json"
    assert cert_path.exists(), f"no certificate written; output:\n{output[-4000:]}"
    return KitRun(done.returncode, output, json.loads(cert_path.read_text()))


def pytest_process(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m pytest -p no:cacheprovider ARGS`` in ``cwd``, as a user runs it (no pytest
    variables of this run), its output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
