"""``cluster.final-group-has-model`` on the session's live cluster (issue 11 item 1).

The callback runs inside a Ray actor, loaded by its path, as on a serving replica; then a
task pinned to each node of the final placement group lists the model folder there. A plain
callback leaves every node holding the files; one that removes the downloads in
``post_initialization`` leaves nodes without them, and the check says which. The driver's
connection is also put back after a callback calls ``ray.shutdown()`` in a scenario run on
the live cluster.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import Bench, CheckContext, CheckFailed, Settings, Subject, get_check
from conformance.harness import config_with
from pytest_raycallbacks.kit.clusters import LiveCheckCluster

pytestmark = pytest.mark.live

MODULES = {
    "h11_keeps_files": """
        def callback(phase, config, data):
            return None
    """,
    "h11_removes_files": """
        import shutil

        def callback(phase, config, data):
            if phase == "post_initialization":
                for download in data["download_result"].nodes.values():
                    shutil.rmtree(download.path, ignore_errors=True)
    """,
    "h11_shuts_down": """
        import ray

        def callback(phase, config, data):
            if phase == "post_initialization":
                ray.shutdown()
    """,
}


@pytest.fixture
def project(
    gpu_ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path))  # shipped to the actors (a local cluster)
    with gpu_ray_cluster.leak_check():
        yield tmp_path


def _context(spec: str, cluster: LiveCheckCluster, folder: Path) -> CheckContext:
    subject = Subject(spec, import_paths=(str(folder),), cwd=str(folder))
    settings = Settings(timeout_s=30.0, cache_dir=str(folder / "models"))
    return CheckContext(subject, settings, cluster, Bench(subject, cluster, settings))


def test_the_model_files_are_read_on_each_node_of_the_final_group(
    gpu_ray_cluster: Any, project: Path
) -> None:
    cluster = LiveCheckCluster(gpu_ray_cluster)
    check = get_check("cluster.final-group-has-model")
    config = config_with(Settings(cache_dir=str(project / "models")).base_config(), [])

    kept = cluster.run_in_worker(config_with(config, ["h11_keeps_files.callback"]), timeout_s=30.0)
    assert kept.error is None and kept.model_check_error is None
    assert kept.missing_model == {}
    assert check.function(_context("h11_keeps_files.callback", cluster, project)) is None

    with pytest.raises(CheckFailed) as failed:
        check.function(_context("h11_removes_files.callback", cluster, project))
    assert "on the live cluster (a task on each node of the group listed its files)" in (
        failed.value.happened
    )
    assert "files absent from" in failed.value.happened


def test_a_driver_a_callback_disconnected_is_connected_again(
    gpu_ray_cluster: Any, project: Path
) -> None:
    cluster = LiveCheckCluster(gpu_ray_cluster)
    run = _context("h11_shuts_down.callback", cluster, project).require_bench().lifecycle()
    (change,) = [c for call in run.calls for c in call.process]
    assert change.aspect == "ray-connection" and change.what.endswith("to not connected")
    import ray

    assert ray.is_initialized()
    assert ray.get_runtime_context().gcs_address == gpu_ray_cluster.describe()["address"]
