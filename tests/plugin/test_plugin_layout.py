"""The plugin's layout (docs/design.md §Layers): the kit's features never reach back for the
kit, and the kit's package imports none of its modules until a name is used.

No cycles and the size limit are checked for the whole project in
``tests/test_architecture.py``, whose run-time import graph this reuses.
"""

from __future__ import annotations

import subprocess
import sys

from tests.test_architecture import import_graph

SESSION = "pytest_raycallbacks.kit.session"


def test_only_the_entry_point_and_the_fixture_reach_for_the_kit_session() -> None:
    """Report, coverage and chain get what they need from the kit as arguments (the kit's
    results and settings, its callbacks, the kit itself as the chain's services)."""
    graph = import_graph()
    assert "pytest_raycallbacks.chain.plugin" in graph[SESSION]  # the graph sees the kit's
    reaching = {name for name, imports in graph.items() if SESSION in imports}
    assert reaching == {"pytest_raycallbacks.plugin", "pytest_raycallbacks.kit.fixture"}


def test_the_kit_package_imports_none_of_its_modules() -> None:
    graph = import_graph()
    assert {
        m for m in graph["pytest_raycallbacks.kit"] if m.startswith("pytest_raycallbacks.")
    } == {"pytest_raycallbacks._lazy"}


def test_the_kits_names_load_on_first_use() -> None:
    code = (
        "import sys, pytest_raycallbacks.kit as kit; "
        "before = 'pytest_raycallbacks.kit.session' in sys.modules; "
        "kit.Kit; kit.StaleWaiverWarning; "
        "print(before, 'pytest_raycallbacks.kit.session' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "True"], out.stderr
