"""The architecture rules of docs/design.md §Layers, checked on the source.

* no import cycle between the modules of the three packages at run time: every import counts,
  at module level or inside a function, except those under ``if TYPE_CHECKING:``;
* no module of the three packages is longer than 600 lines;
* the built wheel ships the three packages' product modules and nothing else.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reference_runner", "conformance", "pytest_raycallbacks")
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time.

    ``from pkg.mod import name`` points at ``pkg.mod.name`` when that is a module, else at
    ``pkg.mod``. Importing a submodule also runs its parent packages' ``__init__``, but those
    run first (the parent is always imported before its child), so no edge is added for them.
    """
    modules = all_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own = name.split(".") if is_package else name.split(".")[:-1]
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = own[: len(own) - (node.level - 1)] if node.level else []
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_function_level_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_runtime_imports_skip_type_checking_blocks() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from x import y\n"
        "def f():\n    import z\n"
    )
    names = sorted(
        n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
        for n in runtime_imports(tree)
    )
    assert names == ["typing", "z"]


def test_no_import_cycles_at_run_time() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (pass what a module needs in instead):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


@pytest.mark.parametrize("name", sorted(all_modules()))
def test_module_is_at_most_600_lines(name: str) -> None:
    path = all_modules()[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"


def test_the_wheel_ships_only_the_three_packages(tmp_path: Path) -> None:
    """Build the wheel (offline: ``setuptools`` is in the test extra) from a copy of the
    tree and read what it holds: the three packages' product modules and data, and nothing
    test-only."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if n.split("/")[0] not in PACKAGES and ".dist-info/" not in n]
    assert not outside, f"the wheel ships files outside the three packages: {outside}"
    shipped = {n[: -len(".py")].replace("/", ".") for n in names if n.endswith(".py")}
    assert {m for m in all_modules()} <= {s.removesuffix(".__init__") for s in shipped}
    test_only = sorted(
        n
        for n in shipped
        if n.rsplit(".", 1)[-1].startswith(("test_", "conftest", "differential", "kit_preload"))
    )
    assert not test_only, f"test-only modules in the wheel: {test_only}"
