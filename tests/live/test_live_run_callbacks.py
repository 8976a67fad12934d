"""Running callbacks where they will run: ``initialize_node`` in an actor on the cluster,
callbacks loaded there from their import paths, objects really shipped to a worker."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from live_helpers import write_module

from pytest_raycallbacks.live import ClusterImportError, NotShippableError, Unshippable
from reference_runner import TINY_MODEL_PATH, CallbackLoadError, LLMConfig

pytestmark = pytest.mark.live

CALLBACKS = """
    import os

    def record(phase, config, data):
        if phase == "pre_initialization":
            return {"seen_on": os.getpid(), "phases": [phase]}
        data["phases"].append(phase)
        if phase == "pre_engine_init":
            return {"extra_init_kwargs": {"from": __name__}}

    def explode(phase, config, data):
        if phase == "post_download":
            raise ValueError("kaboom in " + phase)

    def lock_it(phase, config, data):
        import threading
        if phase == "pre_initialization":
            return {"a_lock": threading.Lock()}
"""


def load_from_file(folder: Path, source: str) -> Any:
    """Import a module from a file that is NOT on sys.path (like --import-mode=importlib)."""
    name = write_module(folder, source, prefix="rcbfile")
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def callbacks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A callbacks module importable in the driver from a folder the cluster did not see
    when it started (the folder is added to the driver's sys.path now)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return write_module(tmp_path, CALLBACKS)


def test_initialize_node_runs_in_an_actor_with_callbacks_loaded_there(
    cluster: Any, callbacks_module: str
) -> None:
    gpu_node = next(n for n in cluster.nodes() if n.gpus)
    result = cluster.run_initialize_node(
        LLMConfig(
            model_id=TINY_MODEL_PATH,
            callbacks=[
                f"{callbacks_module}:record",
                "examples.stateful_callback.CustomInitializationCallback",
            ],
            engine_kwargs={"tensor_parallel_size": 2},
        ),
        node_id=gpu_node.node_id,
    )
    assert result.place.node_id == gpu_node.node_id
    assert result.data["seen_on"] == result.place.pid  # the callback ran in the actor
    assert result.data["phases"] == [
        "pre_initialization",
        "pre_download",
        "post_download",
        "post_placement_group",
        "pre_engine_init",
        "post_initialization",
    ]
    assert result.extra_init_kwargs == {"device": "cuda", "custom_param": "value"}
    assert result.bundles == ({"GPU": 2.0},) or result.bundles == ({"GPU": 1.0}, {"GPU": 1.0})
    assert sum(b.get("GPU", 0) for b in result.bundles) == 2
    assert set(result.nodes) <= {n.node_id for n in cluster.nodes() if n.gpus}
    downloads = result.download_result.nodes
    assert gpu_node.node_id in downloads  # the local node of the actor
    assert all(node in downloads for node in result.nodes)  # the group's worker nodes
    assert result.placement_group is None  # removed, so nothing leaks


def test_a_kept_placement_group_lives_until_released(cluster: Any) -> None:
    result = cluster.run_initialize_node([], keep_placement_group=True)
    assert result.placement_group is not None
    assert cluster.leaks(None).placement_groups  # still there, held by the actor
    cluster.release_result(result)


def test_a_spec_that_loads_in_the_driver_but_not_on_the_cluster_says_how_to_fix_it(
    cluster: Any, callbacks_module: str
) -> None:
    spec = f"{callbacks_module}:record"
    with pytest.raises(ClusterImportError) as info:
        cluster.run_initialize_node([spec], ship_sys_path=False)
    message = str(info.value)
    assert isinstance(info.value, CallbackLoadError)
    assert spec in message
    assert "loads in this driver" in message
    assert "but not on the Ray cluster" in message
    assert f"no module named '{callbacks_module}'" in message.lower()
    assert "py_modules" in message
    assert "working_dir" in message
    assert "RAYCALLBACKS_RUNTIME_ENV" in message


def test_a_spec_that_loads_nowhere_is_the_runners_own_load_error(cluster: Any) -> None:
    with pytest.raises(CallbackLoadError, match="no_such_pkg_rcb") as info:
        cluster.run_initialize_node(["no_such_pkg_rcb.mod:cb"])
    assert not isinstance(info.value, ClusterImportError)
    notes = "\n".join(info.value.__notes__)
    assert "raised on the Ray cluster" in notes
    assert "remote traceback" in notes


def test_a_callback_error_comes_back_as_itself_with_where_it_happened(
    cluster: Any, callbacks_module: str
) -> None:
    with pytest.raises(ValueError, match="kaboom in post_download") as info:
        cluster.run_initialize_node([f"{callbacks_module}:explode"])
    notes = "\n".join(info.value.__notes__)
    assert "explode" in notes  # the runner's note: which callback, which phase
    assert "post_download" in notes
    assert "raised on the Ray cluster (node" in notes


def test_values_that_cannot_come_back_are_marked_not_lost(
    cluster: Any, callbacks_module: str
) -> None:
    result = cluster.run_initialize_node([f"{callbacks_module}:lock_it"])
    assert isinstance(result.data["a_lock"], Unshippable)
    assert "lock" in result.data["a_lock"].type_name


def test_an_importable_object_callback_is_shipped_and_run(cluster: Any) -> None:
    from examples.stateful_callback import CustomInitializationCallback

    result = cluster.run_initialize_node([CustomInitializationCallback(device_type="xpu")])
    assert result.extra_init_kwargs["device"] == "xpu"
    assert result.data["custom_device"] == "xpu"


def test_an_object_a_worker_cannot_rebuild_fails_although_pickle_round_trips(
    cluster: Any, tmp_path: Path
) -> None:
    module = load_from_file(
        tmp_path,
        """
        class Callback:
            def __call__(self, phase, config, data):
                return None
        """,
    )
    callback = module.Callback()
    assert type(pickle.loads(pickle.dumps(callback))) is module.Callback  # passes locally
    with pytest.raises(NotShippableError) as info:
        cluster.check_shippable(callback)
    assert info.value.stage == "unpickle"
    assert "ModuleNotFoundError" in info.value.cause
    assert "pickles in this driver but a Ray worker" in str(info.value)
    with pytest.raises(NotShippableError, match="cannot rebuild it"):
        cluster.run_initialize_node([callback])


def test_check_shippable_reports_where_an_object_was_rebuilt(cluster: Any) -> None:
    from examples.stateful_callback import CustomInitializationCallback

    node = next(n for n in cluster.nodes() if n.gpus)
    report = cluster.check_shippable(CustomInitializationCallback(), node_id=node.node_id)
    assert report.place.node_id == node.node_id
    assert report.type_name == "examples.stateful_callback.CustomInitializationCallback"
    assert report.module_file.endswith("examples/stateful_callback.py")
    assert report.size_bytes > 0


def test_an_object_that_does_not_even_pickle_is_refused_before_shipping(cluster: Any) -> None:
    class Locked:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __call__(self, phase: str, config: Any, data: Any) -> None:
            return None

    with pytest.raises(NotShippableError, match="does not pickle in this driver") as info:
        cluster.check_shippable(Locked())
    assert info.value.stage == "pickle"
