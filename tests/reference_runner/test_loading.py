"""load_callback: both spec forms, classes, and a clear error for every failure mode."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reference_runner import CallbackLoadError, load_callback
from reference_runner.loading import import_path_of, spec_form_problem

MODULE = """
def cb(phase, config, data):
    return {"from": "cb"}

class Stateful:
    def __init__(self, device="cuda"):
        self.device = device
    def __call__(self, phase, config, data):
        return None
    @staticmethod
    def static_cb(phase, config, data):
        return None

class NeedsArgs:
    def __init__(self, device):
        self.device = device
    def __call__(self, phase, config, data):
        return None

class NotACallback:
    pass

class BrokenInit:
    def __init__(self):
        raise RuntimeError("no GPU here")
    def __call__(self, phase, config, data):
        return None

instance = Stateful("tpu")
NOT_CALLABLE = 42
"""


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A throwaway package `rc_pkg_<n>` with module `mod` holding the callbacks above."""
    name = f"rc_pkg_{abs(hash(tmp_path)) % 10**8}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text(textwrap.dedent(MODULE))
    (root / "raises.py").write_text("raise RuntimeError('config server unreachable')\n")
    (root / "imports_missing.py").write_text("import definitely_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def test_callable_is_returned_as_is() -> None:
    def cb(phase: str, config: Any, data: dict[str, Any]) -> None:
        return None

    assert load_callback(cb) is cb


@pytest.mark.parametrize("form", ["{pkg}.mod.cb", "{pkg}.mod:cb"])
def test_both_forms_load_the_same_function(pkg: str, form: str) -> None:
    import importlib

    assert load_callback(form.format(pkg=pkg)) is importlib.import_module(f"{pkg}.mod").cb


@pytest.mark.parametrize("form", ["{pkg}.mod.Stateful", "{pkg}.mod:Stateful"])
def test_class_spec_is_instantiated_with_no_arguments(pkg: str, form: str) -> None:
    loaded = load_callback(form.format(pkg=pkg))
    assert type(loaded).__name__ == "Stateful" and loaded.device == "cuda"  # type: ignore[attr-defined]


def test_class_object_is_instantiated_too(pkg: str) -> None:
    import importlib

    cls = importlib.import_module(f"{pkg}.mod").Stateful
    assert isinstance(load_callback(cls), cls)


def test_colon_form_reaches_class_attributes_and_instances(pkg: str) -> None:
    assert load_callback(f"{pkg}.mod:Stateful.static_cb").__name__ == "static_cb"
    assert load_callback(f"{pkg}.mod.Stateful.static_cb").__name__ == "static_cb"
    assert load_callback(f"{pkg}.mod:instance").device == "tpu"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("cb", ["'cb'", "not fully qualified", "package.module.function"]),
        ("a..b", ["not a valid import path"]),
        ("a.b:c:d", ["not a valid import path"]),
        (" a.b", ["whitespace"]),
        ("no_such_module_xyz.cb", ["no module found", "'no_such_module_xyz'", "PYTHONPATH"]),
        ("no_such_module_xyz:cb", ["no module named 'no_such_module_xyz'"]),
        ("{pkg}.raises.cb", ["importing module", "raises' raised RuntimeError", "unreachable"]),
        ("{pkg}.raises:cb", ["raised RuntimeError: config server unreachable"]),
        (
            "{pkg}.imports_missing.cb",
            ["imports missing module 'definitely_missing_dependency_xyz'"],
        ),
        ("{pkg}.mod.cbb", ["has no attribute 'cbb'", "did you mean 'cb'?"]),
        ("{pkg}.mod:Stateful.nope", ["'{pkg}.mod.Stateful' has no attribute 'nope'"]),
        ("{pkg}.mod.NOT_CALLABLE", ["resolves to int 42", "not callable"]),
        ("{pkg}.mod:NeedsArgs", ["needs constructor arguments ['device']", "defaults"]),
        ("{pkg}.mod:NotACallback", ["no __call__(phase, config, data) method"]),
        ("{pkg}.mod:BrokenInit", ["BrokenInit() raised RuntimeError: no GPU here"]),
    ],
)
def test_each_failure_mode_has_its_own_clear_message(
    pkg: str, spec: str, fragments: list[str]
) -> None:
    spec = spec.format(pkg=pkg)
    with pytest.raises(CallbackLoadError) as info:
        load_callback(spec)
    message = str(info.value)
    assert message.startswith(f"cannot load callback {spec!r}: ")
    for fragment in fragments:
        assert fragment.format(pkg=pkg) in message
    assert isinstance(info.value, ImportError)
    assert info.value.spec == spec


def test_non_str_non_callable_spec_is_rejected() -> None:
    with pytest.raises(CallbackLoadError, match="expected a callable or an import path str"):
        load_callback(3)  # type: ignore[arg-type]


def test_spec_form_problem_checks_form_without_importing() -> None:
    assert spec_form_problem("surely.not.imported.module") is None
    assert "surely" not in sys.modules
    assert spec_form_problem("x") is not None


def test_import_path_of_only_for_importable_objects(pkg: str) -> None:
    import importlib

    mod = importlib.import_module(f"{pkg}.mod")
    assert import_path_of(mod.cb) == f"{pkg}.mod:cb"
    assert import_path_of(mod.Stateful.static_cb) == f"{pkg}.mod:Stateful.static_cb"
    assert import_path_of(lambda p, c, d: None) is None
    assert import_path_of(mod.instance) is None
