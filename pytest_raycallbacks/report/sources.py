"""The callback's code in the certificate, and checking it again at deploy time.

A callback is more than the module its spec names: ``teampkg.callbacks.cb`` may return what
``teampkg.helpers.engine_args()`` builds. The kit records every module that importing the
spec (in a fresh interpreter) and running it (each call of every scenario) loaded; from
those, :func:`callback_sources` keeps

* ``files``: the callback's own code, each ``{"module", "path", "sha256", "imports"}``:
  the modules of the spec's own top-level package (installed or not), and any other module
  that is neither in the standard library nor part of an installed distribution (a sibling
  module in the user's folder). ``imports`` are the modules of that own code the file
  imports in its source (statically, wherever the import statement is), so that an import
  added later is told from one that was there but not run;
* ``distributions``: the installed distributions the rest came from, ``{name: version}``;

and drops the standard library and the kit's own packages. :func:`source_findings` is the
deploy gate's side (``raycallbacks verify``): each own file that changed, is gone, or
imports own code it did not import when certified. The distributions are a record of what
the verdict was reached with, not gated (deployment images rarely pin every transitive
dependency of Ray; the gate's own rule compares Ray's major.minor). Only the standard
library is used here: nothing imports Ray or pytest.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

#: The kit's own packages: what they load while driving a callback is not the callback's.
KIT_PACKAGES: Final = frozenset(
    {"conformance", "pytest_raycallbacks", "_pytest", "pytest", "pluggy"}
)


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


def sha256_of(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _installed_site(path: Path) -> bool:
    return "site-packages" in path.parts or "dist-packages" in path.parts


@cache
def _stdlib_roots() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    return tuple({Path(paths[k]).resolve() for k in ("stdlib", "platstdlib") if k in paths})


def is_stdlib(module: str, file: str | None) -> bool:
    """Whether ``module`` (with ``file``) is part of Python's standard library."""
    top = top_level(module)
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    if file is None:
        return False
    path = Path(file).resolve()
    return not _installed_site(path) and any(path.is_relative_to(r) for r in _stdlib_roots())


def _distributions() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions providing it (each once)."""
    found = importlib.metadata.packages_distributions()
    return {top: list(dict.fromkeys(names)) for top, names in found.items()}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def callback_sources(spec_module: str | None, loaded: Mapping[str, str | None]) -> dict[str, Any]:
    """``{"files": [...], "distributions": {...}}`` for the modules in ``loaded`` (name ->
    file) seen loaded by the callback whose spec's module is ``spec_module`` (see the module
    docstring)."""
    own_tops = {top_level(spec_module)} if spec_module else set()
    providers = _distributions()
    own: dict[str, str] = {}
    distributions: dict[str, str | None] = {}
    for module, file in sorted(loaded.items()):
        top = top_level(module)
        if top in KIT_PACKAGES or module == "__main__":
            continue
        if top not in own_tops:
            if is_stdlib(module, file):
                continue
            if top in providers:
                for name in providers[top]:
                    distributions[name] = _version(name)
                continue
            if file is None or _installed_site(Path(file)):
                continue
        if file is not None and Path(file).is_file():
            own[module] = file
    tops = {top_level(m) for m in own}
    files = [
        {
            "module": module,
            "path": path,
            "sha256": sha256_of(path),
            "imports": sorted(own_imports(path, module, tops)),
        }
        for module, path in sorted(own.items())
    ]
    return {"files": files, "distributions": dict(sorted(distributions.items()))}


def own_imports(path: str, module: str, tops: set[str]) -> set[str]:
    """The modules under the top-level packages ``tops`` that the source of ``module`` (at
    ``path``) imports anywhere (``from a import b`` counts ``a`` and ``a.b``); empty when
    the file is not Python source."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return set()
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base is None:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name for name in names if top_level(name) in tops}


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    if not node.level:
        return node.module
    try:
        return importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    except (ImportError, ValueError):
        return None


def module_file(module: str) -> str | None:
    """Where ``module`` is now (parent packages are imported to find it), or ``None``."""
    try:
        found = importlib.util.find_spec(module)
    except Exception:
        return None
    if found is None or found.origin in (None, "built-in", "frozen"):
        return None
    return found.origin


def source_findings(sources: Mapping[str, Any]) -> Iterator[str]:
    """What no longer holds of the recorded ``sources``' files (see the module docstring),
    one sentence each; nothing when every own file is as certified."""
    files = list(sources.get("files") or [])
    recorded = {str(f.get("module")) for f in files}
    tops = {top_level(m) for m in recorded}
    for entry in files:
        module, path = str(entry.get("module")), str(entry.get("path"))
        current = module_file(module)
        if current is None:
            yield (
                f"{path} is gone: module {module!r}, which the callback loaded when it was "
                "certified, cannot be found any more"
            )
            continue
        now = sha256_of(current)
        was = str(entry.get("sha256"))
        if now != was:
            yield (
                f"source of {module!r} changed since certification ({current}: sha256 was "
                f"{was[:12]}..., now {(now or 'unreadable')[:12]}...)"
            )
        before = set(entry.get("imports") or ())
        for name in sorted(own_imports(current, module, tops) - before - recorded):
            added = module_file(name)
            if added is not None:
                yield (
                    f"{added} was added to the imports: {current} imports {name!r}, which it "
                    "did not import when certified"
                )
