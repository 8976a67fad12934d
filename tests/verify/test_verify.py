"""The deploy gate ``raycallbacks verify``: certified, tampered, uncertified, other Ray."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.cli import main
from pytest_raycallbacks.verify import CertificateError, load_certificate, verify_certificate

SOURCE = "def cb(phase, config, data):\n    return None\n"


def certificate(tmp_path: Path, *, verdict: str = "certified", ray: str | None = None) -> Path:
    """A certificate for `gatemod.cb`, written as the plugin writes them."""
    module = tmp_path / "gatemod.py"
    module.write_text(SOURCE)
    import importlib.metadata

    document: dict[str, Any] = {
        "format": "raycallbacks-certificate/1",
        "environment": {"ray": ray or importlib.metadata.version("ray")},
        "callbacks": [
            {
                "spec": "gatemod.cb",
                "module": "gatemod",
                "file": str(module),
                "sha256": hashlib.sha256(SOURCE.encode()).hexdigest(),
                "verdict": verdict,
            }
        ],
    }
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(document))
    return path


def run_cli(path: Path, tmp_path: Path) -> tuple[int, str]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_raycallbacks.cli",
            "verify",
            str(path),
            "--path",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    return out.returncode, out.stdout + out.stderr


def test_untouched_certified_callback_passes(tmp_path: Path) -> None:
    code, out = run_cli(certificate(tmp_path), tmp_path)
    assert code == 0, out
    assert "ok  gatemod.cb: certified, source unchanged" in out


def test_tampered_source_fails_and_says_what_changed(tmp_path: Path) -> None:
    path = certificate(tmp_path)
    (tmp_path / "gatemod.py").write_text(SOURCE + "# sneaky edit\n")
    code, out = run_cli(path, tmp_path)
    assert code == 1
    assert "source of 'gatemod' changed since certification" in out and "certify it again" in out


def test_rejected_verdict_fails(tmp_path: Path) -> None:
    document = load_certificate(certificate(tmp_path, verdict="rejected"))
    findings = verify_certificate(document, import_paths=[str(tmp_path)])
    assert [str(f) for f in findings] == ["gatemod.cb: verdict was 'rejected', not 'certified'"]


def test_other_ray_minor_fails(tmp_path: Path) -> None:
    document = load_certificate(certificate(tmp_path, ray="2.49.1"))
    findings = verify_certificate(document, import_paths=[str(tmp_path)], ray_version="2.60.0")
    assert len(findings) == 1 and "made with Ray 2.49.1" in str(findings[0])
    assert verify_certificate(document, import_paths=[str(tmp_path)], ray_version="2.49.7") == []


def test_missing_module_fails(tmp_path: Path) -> None:
    path = certificate(tmp_path)
    (tmp_path / "gatemod.py").unlink()
    findings = verify_certificate(load_certificate(path), import_paths=[str(tmp_path)])
    assert "cannot be found any more" in str(findings[0])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("{", "is not JSON"), ('{"format": "x"}', "is not a raycallbacks certificate")],
)
def test_unreadable_certificate_exits_2(
    tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["verify", str(path)]) == 2
    assert fragment in capsys.readouterr().err
    with pytest.raises(CertificateError):
        load_certificate(tmp_path / "missing.json")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("raycallbacks")
    assert script.exists(), "pip install -e . installs the raycallbacks console script"
