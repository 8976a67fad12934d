"""Process state around a callback's calls (issue 11 item 2, issue 10 item 4).

:mod:`conformance.process_state` snapshots the Ray connection, ``os.environ``, the working
directory and ``sys.path``; the recorder records what each call changed and puts it back
right after the call; the harness puts it back after a run whose call never returned. Each
change is written several ways, so the rules are not tied to one spelling.
"""

from __future__ import annotations

import asyncio
import os
import site
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.process_state import (
    ENVIRONMENT,
    IMPORT_PATH,
    RAY_CONNECTION,
    WORKING_DIRECTORY,
    changes,
    restore,
    snapshot,
)
from conformance.recorder import Recorder

VAR = "RAYCALLBACKS_PROCESS_STATE_TEST"


@pytest.fixture
def clean_state(tmp_path: Path) -> Iterator[Path]:
    """A test that fails half-way must not leave its changes to the next one."""
    state = snapshot()
    try:
        yield tmp_path
    finally:
        restore(state, ray=False)


def _set_item(_: Path) -> None:
    os.environ[VAR] = "x"


def _update(_: Path) -> None:
    os.environ.update({VAR: "x", VAR + "_2": "y"})


def _putenv_and_environ(_: Path) -> None:
    os.putenv(VAR, "x")
    os.environ.setdefault(VAR, "x")


def _pop_existing(_: Path) -> None:
    os.environ.pop("PATH")


def _chdir(tmp: Path) -> None:
    os.chdir(tmp)


def _chdir_root(_: Path) -> None:
    os.chdir("/")


def _insert(tmp: Path) -> None:
    sys.path.insert(0, str(tmp))


def _append(tmp: Path) -> None:
    sys.path.append(str(tmp / "plugins"))


def _addsitedir(tmp: Path) -> None:
    site.addsitedir(str(tmp))


CHANGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "environ[key] = value": (ENVIRONMENT, _set_item),
    "environ.update": (ENVIRONMENT, _update),
    "putenv + environ.setdefault": (ENVIRONMENT, _putenv_and_environ),
    "environ.pop of an existing variable": (ENVIRONMENT, _pop_existing),
    "chdir to a folder": (WORKING_DIRECTORY, _chdir),
    "chdir to /": (WORKING_DIRECTORY, _chdir_root),
    "sys.path.insert": (IMPORT_PATH, _insert),
    "sys.path.append": (IMPORT_PATH, _append),
    "site.addsitedir": (IMPORT_PATH, _addsitedir),
}


@pytest.mark.parametrize("how", list(CHANGES))
def test_each_change_is_seen_by_its_aspect_and_put_back(how: str, clean_state: Path) -> None:
    aspect, change = CHANGES[how]
    before = snapshot()
    change(clean_state)
    found = changes(before, snapshot())
    assert [c.aspect for c in found] == [aspect]
    assert restore(before) == []
    assert changes(before, snapshot()) == []
    assert os.environ.get(VAR) is None


def test_environment_changes_name_variables_never_their_values(clean_state: Path) -> None:
    before = snapshot()
    os.environ[VAR] = "s3cr3t-token"
    os.environ["PATH"] = os.environ["PATH"] + os.pathsep + "/opt/x"
    (found,) = changes(before, snapshot())
    assert f"set os.environ['{VAR}']" in found.what
    assert "changed os.environ['PATH']" in found.what
    assert "s3cr3t" not in found.what


def test_reading_the_connection_never_imports_ray() -> None:
    code = (
        "import sys; from conformance.process_state import ray_connection, snapshot; "
        "snapshot(); print(ray_connection().connected, 'ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------- the recorder


def _record(callback: Any, **kwargs: Any) -> Recorder:
    recorder = Recorder(callback, **kwargs)
    result = recorder.wrapper("pre_initialization", object(), {})
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return recorder


def test_the_recorder_records_each_change_and_puts_it_back_after_the_call(
    clean_state: Path,
) -> None:
    path = list(sys.path)

    def callback(phase: str, config: Any, data: dict[str, Any]) -> None:
        os.environ[VAR] = "1"
        os.chdir(clean_state)
        sys.path.insert(0, str(clean_state))

    cwd = os.getcwd()
    (call,) = _record(callback).calls
    assert {c.aspect for c in call.process} == {ENVIRONMENT, WORKING_DIRECTORY, IMPORT_PATH}
    assert VAR not in os.environ and os.getcwd() == cwd and sys.path == path


def test_an_async_bound_method_is_recorded_and_put_back(clean_state: Path) -> None:
    class Hooks:
        async def handle(self, phase: str, config: Any, data: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            os.environ.update({VAR: "1"})

    hooks = Hooks()
    recorder = _record(hooks.handle)
    (call,) = recorder.calls
    assert [c.aspect for c in call.process] == [ENVIRONMENT]
    assert VAR not in os.environ
    assert recorder.wrapper.__qualname__.endswith("Hooks.handle")


def test_a_call_that_changes_nothing_records_nothing() -> None:
    (call,) = _record(lambda phase, config, data: {"k": os.environ.get("HOME")}).calls
    assert call.process == ()


def test_modules_a_call_imports_are_recorded(clean_state: Path) -> None:
    (clean_state / "h11_lazy_helper.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(clean_state))

    def callback(phase: str, config: Any, data: dict[str, Any]) -> None:
        import h11_lazy_helper  # noqa: F401

    try:
        (call,) = _record(callback).calls
    finally:
        sys.modules.pop("h11_lazy_helper", None)
    assert call.modules == {"h11_lazy_helper": str(clean_state / "h11_lazy_helper.py")}


# ---------------------------------------------------------------------- the Ray connection


def test_shutdown_is_seen_and_the_driver_reconnected_on_the_fake_cluster(
    fake_ray_cluster: Any,
) -> None:
    import ray

    def callback(phase: str, config: Any, data: dict[str, Any]) -> None:
        ray.shutdown()

    (call,) = _record(callback).calls
    (change,) = call.process
    assert change.aspect == RAY_CONNECTION
    assert "as job 01000000 to not connected" in change.what
    assert ray.is_initialized()


def test_reinit_to_the_same_address_is_a_new_job(fake_ray_cluster: Any) -> None:
    import ray

    class Reconnect:
        def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> None:
            address = ray.get_runtime_context().gcs_address
            ray.shutdown()
            ray.init(address=address)

    (call,) = _record(Reconnect()).calls
    (change,) = call.process
    assert "job 01000000 to connected to fake-ray://" in change.what
    assert change.what.endswith("as job 02000000")


def test_the_cluster_reconnects_its_own_way(fake_ray_cluster: Any) -> None:
    import ray

    reconnected: list[bool] = []

    def reconnect() -> None:
        reconnected.append(True)
        ray.init()

    _record(lambda phase, config, data: ray.shutdown(), reconnect=reconnect)
    assert reconnected == [True] and ray.is_initialized()


# ---------------------------------------------------------------------- a run


def test_a_run_puts_back_what_a_call_that_timed_out_changed(clean_state: Path) -> None:
    from conformance.harness import run_scenario
    from pytest_raycallbacks.kit.clusters import FakeCheckCluster
    from reference_runner import TINY_MODEL_PATH, LLMConfig

    def callback(phase: str, config: Any, data: dict[str, Any]) -> None:
        if phase == "pre_initialization":
            os.environ[VAR] = "1"
            sys.path.append(str(clean_state / "late"))
            time.sleep(1.5)

    path = list(sys.path)
    config = LLMConfig(model_id=TINY_MODEL_PATH, model_cache_dir=str(clean_state / "models"))
    run = run_scenario(
        FakeCheckCluster(), callback, config, scenario="t", timeout_s=0.3, placement_timeout_s=1
    )
    assert run.error is not None
    assert VAR not in os.environ and sys.path == path
    time.sleep(1.5)  # the abandoned call returns, and puts back the state it started from
    assert VAR not in os.environ and sys.path == path
