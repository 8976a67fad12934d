"""Runs ``docs/examples/test_downstream_properties.py`` so the documented example cannot rot."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "docs" / "examples" / "test_downstream_properties.py"
)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("downstream_properties_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE_TESTS = sorted(
    name for name, obj in vars(load_example()).items() if name.startswith("test_") and callable(obj)
)


def test_the_example_has_tests() -> None:
    assert len(EXAMPLE_TESTS) == 3


@pytest.mark.parametrize("name", EXAMPLE_TESTS)
def test_example(name: str) -> None:
    test = getattr(load_example(), name)
    assert not inspect.signature(test).parameters  # @given supplies every argument
    test()
