"""The deploy gate over every file of the callback's own code (issue 11 items 6 and 7).

``teampkg.callbacks.cb`` returns what ``teampkg.helpers.engine_args()`` builds (imported at
the top), and ``teampkg.callbacks.lazy_cb`` imports ``teampkg.tuning`` inside its body, only
when it runs. The certificate records each own file (``__init__.py`` included), the
distribution of a third-party import (PyYAML) and nothing of the standard library; verify
names each file that changed, was added to the imports or is gone. The certificate is written
with the user's umask.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.report.certificate import write_atomically
from pytest_raycallbacks.report.sources import callback_sources, own_imports
from pytest_raycallbacks.verify import verify_certificate
from tests.conformance.kit_helpers import run_kit

PACKAGE = {
    "__init__.py": '"""The team\'s callbacks."""\n',
    "callbacks.py": (
        "from teampkg.helpers import engine_args\n"
        "\n"
        "\n"
        "def cb(phase, config, data):\n"
        "    if phase == 'pre_engine_init':\n"
        "        return {'extra_init_kwargs': engine_args()}\n"
        "    return None\n"
        "\n"
        "\n"
        "def lazy_cb(phase, config, data):\n"
        "    if phase == 'pre_engine_init':\n"
        "        from . import tuning\n"
        "\n"
        "        return {'extra_init_kwargs': tuning.kwargs()}\n"
        "    return None\n"
    ),
    "helpers.py": (
        "import json\n"
        "\n"
        "import yaml\n"
        "\n"
        "\n"
        "def engine_args():\n"
        "    return json.loads(json.dumps(yaml.safe_load('max_model_len: 4096')))\n"
    ),
    "tuning.py": "def kwargs():\n    return {'enforce_eager': True}\n",
}
SPECS = ("teampkg.callbacks.cb", "teampkg.callbacks:lazy_cb")


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    project = tmp_path_factory.mktemp("teamproject")
    (project / "teampkg").mkdir()
    for name, text in PACKAGE.items():
        (project / "teampkg" / name).write_text(text)
    run = run_kit(project, SPECS)
    assert run.returncode == 0, run.output[-3000:]
    return project, run.certificate


@pytest.fixture
def project(certified: tuple[Path, dict[str, Any]]) -> Iterator[Path]:
    """The certified project, put back as it was after each test that edits it."""
    folder = certified[0] / "teampkg"
    saved = {p.name: p.read_text() for p in folder.glob("*.py")}
    yield certified[0]
    for path in folder.glob("*.py"):
        if path.name not in saved:
            path.unlink()
    for name, text in saved.items():
        (folder / name).write_text(text)
    for name in [m for m in sys.modules if m == "teampkg" or m.startswith("teampkg.")]:
        del sys.modules[name]


def _sources(certificate: dict[str, Any], spec: str) -> dict[str, Any]:
    entry = next(c for c in certificate["callbacks"] if c["spec"] == spec)
    return dict(entry["sources"])


def _verify(project: Path, certificate: dict[str, Any]) -> list[str]:
    return [str(f) for f in verify_certificate(certificate, import_paths=[str(project)])]


def test_every_own_file_the_callback_loaded_is_recorded(
    certified: tuple[Path, dict[str, Any]],
) -> None:
    project, certificate = certified
    eager = _sources(certificate, SPECS[0])
    assert {f["module"] for f in eager["files"]} == {
        "teampkg",
        "teampkg.callbacks",
        "teampkg.helpers",
    }
    by_module = {f["module"]: f for f in eager["files"]}
    assert by_module["teampkg.helpers"]["path"] == str(project / "teampkg" / "helpers.py")
    assert len(by_module["teampkg.helpers"]["sha256"]) == 64
    assert by_module["teampkg.callbacks"]["imports"] == [
        "teampkg",
        "teampkg.helpers",
        "teampkg.helpers.engine_args",
        "teampkg.tuning",
    ]
    assert eager["distributions"]["PyYAML"] == importlib.metadata.version("PyYAML")
    assert "json" not in json.dumps(eager["distributions"]).lower()
    lazy = _sources(certificate, SPECS[1])
    assert "teampkg.tuning" in {f["module"] for f in lazy["files"]}  # imported when it ran


def test_untouched_sources_hold(certified: tuple[Path, dict[str, Any]], project: Path) -> None:
    assert _verify(project, certified[1]) == []


def test_a_changed_helper_is_named(certified: tuple[Path, dict[str, Any]], project: Path) -> None:
    helpers = project / "teampkg" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("4096", "8192"))
    findings = _verify(project, certified[1])
    assert [f.split(": ", 1)[0] for f in findings] == list(SPECS)  # both import the helper
    for finding in findings:
        assert "source of 'teampkg.helpers' changed since certification" in finding
        assert str(helpers) in finding and "certify it again" in finding


def test_a_helper_run_lazily_is_gated_too(
    certified: tuple[Path, dict[str, Any]], project: Path
) -> None:
    tuning = project / "teampkg" / "tuning.py"
    tuning.write_text(tuning.read_text().replace("True", "False"))
    findings = _verify(project, certified[1])
    assert [f.split(": ", 1)[0] for f in findings] == [SPECS[1]]  # only it ran the module
    assert str(tuning) in findings[0]


def test_a_file_added_to_the_imports_is_named(
    certified: tuple[Path, dict[str, Any]], project: Path
) -> None:
    folder = project / "teampkg"
    (folder / "limits.py").write_text("MAX = 1\n")
    helpers = folder / "helpers.py"
    helpers.write_text("from .limits import MAX\n" + helpers.read_text())
    findings = _verify(project, certified[1])
    added = [f for f in findings if "was added to the imports" in f]
    assert added and str(folder / "limits.py") in added[0]
    assert any("source of 'teampkg.helpers' changed" in f for f in findings)


def test_a_file_that_is_gone_is_named(
    certified: tuple[Path, dict[str, Any]], project: Path
) -> None:
    (project / "teampkg" / "tuning.py").unlink()
    findings = _verify(project, certified[1])
    assert any(str(project / "teampkg" / "tuning.py") in f and "is gone" in f for f in findings)


def test_the_cli_names_the_file_and_exits_1(
    certified: tuple[Path, dict[str, Any]], project: Path
) -> None:
    path = project / "cert.json"
    helpers = project / "teampkg" / "helpers.py"
    ok = subprocess.run(
        [sys.executable, "-m", "pytest_raycallbacks.cli", "verify", str(path)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    helpers.write_text(helpers.read_text() + "# tuned\n")
    failed = subprocess.run(
        [sys.executable, "-m", "pytest_raycallbacks.cli", "verify", str(path)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert "helpers.py" in failed.stdout and "source unchanged" not in failed.stdout


# ---------------------------------------------------------------------- units


def test_the_standard_library_and_the_kit_are_left_out(tmp_path: Path) -> None:
    import yaml

    own = tmp_path / "mine.py"
    own.write_text("import json\n")
    loaded = {
        "mine": str(own),
        "json": json.__file__,
        "json.decoder": sys.modules["json.decoder"].__file__,
        "conformance.recorder": "/x/conformance/recorder.py",
        "yaml": yaml.__file__,
    }
    sources = callback_sources("mine", loaded)
    assert [f["module"] for f in sources["files"]] == ["mine"]
    assert list(sources["distributions"]) == ["PyYAML"]


def test_relative_and_nested_imports_are_resolved(tmp_path: Path) -> None:
    source = tmp_path / "callbacks.py"
    source.write_text(
        "import os\nfrom . import tuning\nfrom .sub.deep import x\n"
        "def f():\n    import teampkg.late\n    from teampkg import *\n"
    )
    assert own_imports(str(source), "teampkg.callbacks", {"teampkg"}) == {
        "teampkg",
        "teampkg.tuning",
        "teampkg.sub.deep",
        "teampkg.sub.deep.x",
        "teampkg.late",
    }


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_certificate_is_written_under_the_users_umask(
    tmp_path: Path, umask: int, mode: int
) -> None:
    previous = os.umask(umask)
    try:
        target = tmp_path / "cert.json"
        write_atomically(target, {"format": "x"})
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == mode
    assert json.loads(target.read_text()) == {"format": "x"}
