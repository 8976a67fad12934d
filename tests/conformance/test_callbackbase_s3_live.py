"""Ray's ``CloudDownloader`` and a class written like Ray's test callback, with their
``callback_kwargs``, certified on the live cluster too, the local S3 reaching the process
where the download hook runs.

One kit process (``--raycallbacks-cluster both``) certifies ``CloudDownloader`` reading an
existing bucket, the same class under a second spec reading a bucket that does not exist,
and the test-like class. A second test runs the download hook in a live actor as the kit
does (the local S3's variables in the actor's runtime env) and looks for the files on the
node that ran it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import HERE, KitRun, copy_into, run_kit

from pytest_raycallbacks.live.execution import node_affinity
from pytest_raycallbacks.object_store import LocalS3
from reference_runner import TINY_MODEL_PATH, LLMConfig
from reference_runner.ray_callback_base import CallbackBaseAdapter
from tests.object_store.network_guard import loopback_only

pytestmark = pytest.mark.live

CLOUD = "ray.llm._internal.common.callbacks.cloud_downloader:CloudDownloader"
MISSING = "other_downloader:CloudDownloader"
TESTING = "ray_test_like:TestingCallback"
FILES = {"extra/config.json": '{"a": 1}', "extra/sub/tokenizer.bin": "tok"}
EXPECTED = {"config.json": '{"a": 1}', "sub/tokenizer.bin": "tok"}


def kwargs(spec: str, uri: str, dest: Path) -> list[str]:
    return ["--raycallbacks-callback-kwargs", f"{spec}={json.dumps({'paths': [[uri, str(dest)]]})}"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[KitRun, Path]:
    project = tmp_path_factory.mktemp("s3-project")
    copy_into(project, *sorted((HERE / "kwargs_callbacks").glob("*.py")))
    for key, body in FILES.items():
        path = project / "models" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    options = [
        "--raycallbacks-cluster",
        "both",
        "--raycallbacks-gpus",
        "simulate",
        "--raycallbacks-s3",
        "models=models",
        *kwargs(CLOUD, "s3://models/extra", project / "dest"),
        *kwargs(MISSING, "s3://no-such-models/extra", project / "missing"),
        "--raycallbacks-callback-kwargs",
        f'{TESTING}={{"kwargs_test_key": "kwargs_test_value"}}',
    ]
    return run_kit(project, [CLOUD, MISSING, TESTING], options), project


def files_under(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_clouddownloader_is_certified_on_fake_and_live(run: tuple[KitRun, Path]) -> None:
    kit, project = run
    callback = kit.callback(CLOUD)
    assert callback["verdict"] == "certified", kit.failed(CLOUD)
    assert {c["name"] for c in callback["clusters"]} == {"fake", "live"}
    live = {c["id"]: c["outcome"] for c in callback["checks"] if c["cluster"] == "live"}
    assert live["callbackbase.run"] == "passed"  # Ray's own initialize_node on live
    assert files_under(project / "dest") == EXPECTED


def test_a_missing_bucket_is_rejected_on_live_naming_it(run: tuple[KitRun, Path]) -> None:
    kit, _ = run
    failed = kit.failed(MISSING)
    assert kit.callback(MISSING)["verdict"] == "rejected"
    happened = failed["callbackbase.run"]["failure"]["happened"]
    assert failed["callbackbase.run"]["cluster"] == "live"
    assert "the bucket 'no-such-models' does not exist" in happened


def test_the_test_like_class_is_certified_with_its_kwargs(run: tuple[KitRun, Path]) -> None:
    kit, _ = run
    callback = kit.callback(TESTING)
    assert callback["verdict"] == "certified", kit.failed(TESTING)
    assert {c["name"] for c in callback["clusters"]} == {"fake", "live"}
    assert callback["callback_kwargs"] == {"kwargs_test_key": "***"}  # '*key*' is masked


def _listing(folder: str) -> dict[str, str]:
    """Ray task body: the files under ``folder`` on the node it runs on."""
    root = Path(folder)
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def guarded(gpu_ray_cluster: Any) -> Iterator[Any]:
    """The session cluster, with the network guard letting through only the loopback and
    the cluster's own address (its nodes run on this machine)."""
    host = str(gpu_ray_cluster.describe()["address"]).rsplit(":", 1)[0]
    with gpu_ray_cluster.leak_check(), loopback_only(also=(host,)):
        yield gpu_ray_cluster


def test_the_files_arrive_on_the_node_that_ran_the_hook_by_rays_own_path(
    guarded: Any, raycallbacks_s3_server: LocalS3, tmp_path: Path
) -> None:
    """Ray's own node initialization on live: the download hook runs in Ray's download
    task, whose runtime env Ray builds from the deployment's (the local S3's variables in
    it; never in the driver's environment here)."""
    server = raycallbacks_s3_server
    server.reset()
    server.add_buckets({"models": FILES})
    dest = tmp_path / "dest"
    assert "AWS_ENDPOINT_URL_S3" not in os.environ
    try:
        result = guarded.run_ray_node_initialization(
            {
                "model_loading_config": {"model_id": "m", "model_source": TINY_MODEL_PATH},
                "runtime_env": {"env_vars": server.environment()},
                "callback_config": {
                    "callback_class": CLOUD,
                    "callback_kwargs": {"paths": [["s3://models/extra", str(dest)]]},
                },
            }
        )
        assert result.error is None, result.error
        (node,) = result.node_files
        found = guarded.run_remote(_listing, str(dest), **node_affinity(node))
    finally:
        server.reset()
    assert found == EXPECTED


def test_the_files_arrive_on_the_node_that_ran_the_hook_through_the_adapter(
    guarded: Any, raycallbacks_s3_server: LocalS3, tmp_path: Path
) -> None:
    """Through the adapter (for CallbackRunner users): pickled into the config, the local
    S3's variables in the actor's runtime env."""
    server = raycallbacks_s3_server
    server.reset()
    server.add_buckets({"models": FILES})
    dest = tmp_path / "dest"
    adapter = CallbackBaseAdapter(
        CLOUD, callback_kwargs={"paths": [["s3://models/extra", str(dest)]]}
    )
    assert "AWS_ENDPOINT_URL_S3" not in os.environ
    try:
        result = guarded.run_initialize_node(
            LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[adapter]),
            runtime_env={"env_vars": server.environment()},
        )
        node = result.place.node_id
        found = guarded.run_remote(_listing, str(dest), **node_affinity(node))
    finally:
        server.reset()
    assert found == EXPECTED
