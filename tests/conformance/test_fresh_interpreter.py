"""loading.fresh-interpreter: a spec that imports only thanks to the test session fails.

The user's ``conftest.py`` puts ``vendor/`` on ``sys.path``; the callback lives there. It
loads in the pytest session, but not in a new interpreter (nor on a Ray worker), and the kit
says so, naming what the new process was given.
"""

from __future__ import annotations

import json

import pytest

CONFTEST = """
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "vendor"))
"""
VENDORED = """
def callback(phase, config, data):
    return None
"""


def test_a_spec_importable_only_through_conftest_is_rejected(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    vendor = pytester.mkdir("vendor")
    (vendor / "vendored_cb.py").write_text(VENDORED)
    result = pytester.runpytest_inprocess(
        "--raycallbacks-conformance",
        "vendored_cb.callback",
        "--raycallbacks-cluster",
        "fake",
        "--raycallbacks-report",
        "cert.json",
        "-k",
        "loading",
    )
    assert result.ret == 1
    cert = json.loads((pytester.path / "cert.json").read_text())
    checks = {c["id"]: c for c in cert["callbacks"][0]["checks"]}
    fresh = checks["loading.fresh-interpreter"]
    assert fresh["outcome"] == "failed"
    assert "No module named 'vendored_cb'" in fresh["failure"]["happened"]
    assert "PYTHONPATH" in fresh["failure"]["fix"]
    assert checks["loading.importable"]["outcome"] == "passed"
