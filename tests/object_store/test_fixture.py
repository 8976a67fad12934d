"""The ``s3_object_store`` fixture in a pytest run of its own: one server per session,
emptied per test, buckets by indirect parametrization, environment restored."""

from __future__ import annotations

import subprocess
import sys

import pytest

INNER_CONFTEST = """
from pytest_raycallbacks.object_store.fixture import raycallbacks_s3_server, s3_object_store
"""

INNER_TESTS = """
import os

import pytest

BEFORE = dict(os.environ)
SEEN = []


@pytest.mark.parametrize("s3_object_store", [{"models": {"a.txt": "A"}}], indirect=True)
def test_first(s3_object_store):
    SEEN.append(s3_object_store.endpoint_url)
    assert os.environ["AWS_ENDPOINT_URL_S3"] == s3_object_store.endpoint_url
    assert "AWS_PROFILE" not in os.environ
    assert s3_object_store.listing() == {"models": ["a.txt"]}


def test_second(s3_object_store):
    assert s3_object_store.endpoint_url == SEEN[0]  # one server for the session
    assert s3_object_store.listing() == {}  # nothing left from test_first


def test_environment_restored_after():
    assert os.environ["AWS_PROFILE"] == "someone"
    after = dict(os.environ)
    changed = {k: (BEFORE.get(k), after.get(k)) for k in set(BEFORE) | set(after)
               if BEFORE.get(k) != after.get(k) and k != "PYTEST_CURRENT_TEST"}
    assert changed == {}
"""


def test_the_fixture_in_a_run_of_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=3)


def test_importing_the_package_and_fixture_imports_no_client_library() -> None:
    code = (
        "import sys\n"
        "import pytest_raycallbacks.object_store, pytest_raycallbacks.object_store.fixture\n"
        "print(sorted(m for m in ('moto', 'boto3', 'botocore', 'ray', 'pyarrow') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr
