"""The layering rules of docs/design.md §Layers, checked on the source and in fresh
interpreters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every absolute module each file of ``package`` imports (relative ones resolved)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        rel_parts = path.relative_to(ROOT).with_suffix("").parts
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = rel_parts[: len(rel_parts) - node.level]
                    names.add(".".join((*base, node.module or "")).rstrip("."))
                elif node.module:
                    names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file} imports {name}"
        for file, names in imported_modules(package).items()
        for name in names
        if name.split(".")[0] in forbidden
    )


def test_reference_runner_imports_neither_conformance_nor_the_plugin_nor_pytest() -> None:
    assert (
        offending("reference_runner", ("conformance", "pytest_raycallbacks", "pytest", "_pytest"))
        == []
    )


def test_conformance_never_imports_plugin_internals() -> None:
    if not (ROOT / "conformance").exists():
        pytest.skip("no conformance package yet")
    assert offending("conformance", ("pytest_raycallbacks",)) == []


@pytest.mark.parametrize(
    ("statement", "absent"),
    [
        ("import reference_runner", ("ray", "pytest", "conformance", "pytest_raycallbacks")),
        (
            "import pytest_raycallbacks.plugin",
            # pytest loads the plugin in every run of every user: none of these belongs there
            ("ray", "conformance", "coverage", "hypothesis", "moto", "boto3", "urllib.request"),
        ),
    ],
)
def test_importing_does_not_import_heavy_modules(statement: str, absent: tuple[str, ...]) -> None:
    code = f"import sys; {statement}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_package_is_typed() -> None:
    for package in ("reference_runner", "conformance", "pytest_raycallbacks"):
        if (ROOT / package).exists():
            assert (ROOT / package / "py.typed").exists(), package
