"""Each ``callbackbase.*`` rule against Ray's own code path (issue 17, "no rule contradicts
Ray"): the rule's bad example fails or misbehaves when Ray's code runs it, and its good
counterpart succeeds there.

Ray's code path is the product's (``reference_runner.ray_replica``: Serve's group, a replica
task, Ray's ``get_or_create_callback``, ``run_callback``, ``initialize_node``) on the fake
cluster; where the harm is Ray's comparison rather than a crash, Ray's own function is
called with what the hook left (``download_model_files``, ``RuntimeEnv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray_callback_subjects as S

from conformance.callbackbase_rules import (
    constructor_problems,
    hook_problems,
    loading_problems,
    shipping_problems,
)
from pytest_raycallbacks.fake_ray import FakeRayCluster
from reference_runner import TINY_MODEL_PATH
from reference_runner.ray_callback_base import construct_as_ray
from reference_runner.ray_callback_ctx import ctx_field_problems
from reference_runner.ray_llm import build_ray_llm_config
from reference_runner.ray_replica import ON_AFTER_NODE_INIT, run_replica

MODULE = "ray_callback_subjects"


def deployment(spec: str, **callback: Any) -> dict[str, Any]:
    return {
        "model_loading_config": {"model_id": "m", "model_source": TINY_MODEL_PATH},
        "callback_config": {"callback_class": spec, **callback},
    }


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``start(spec, **callback_config)``: one replica start by Ray's code; the result."""
    home = str(tmp_path_factory.mktemp("torch-home"))
    with FakeRayCluster(gpu_nodes=1, gpus_per_node=2) as cluster:

        def run(spec: str, **callback: Any) -> Any:
            config = build_ray_llm_config(deployment(spec, **callback))
            return run_replica(config, timeout_s=10, placement_timeout_s=5, torch_home=home)

        run.cluster = cluster  # type: ignore[attr-defined]
        yield run


def test_loading(start: Any) -> None:
    bad, good = f"{MODULE}:Outer.Inner", f"{MODULE}:GoodCallback"
    assert loading_problems(bad) and not loading_problems(good)
    assert "has no attribute 'Outer.Inner'" in str(start(bad).error)  # Ray's load_class
    assert start(good).error is None


def test_constructor(start: Any) -> None:
    config = build_ray_llm_config(deployment(f"{MODULE}:GoodCallback"))
    assert constructor_problems(S.DifferentSignature, config)
    assert not constructor_problems(S.GoodCallback, config)
    bad = start(f"{MODULE}:DifferentSignature")
    assert isinstance(bad.error, TypeError) and bad.steps == ("get_or_create_callback",)
    assert start(f"{MODULE}:GoodCallback").error is None


def test_hooks_a_hook_ray_cannot_call(start: Any) -> None:
    assert hook_problems(S.TakesArgument)
    bad = start(f"{MODULE}:TakesArgument")
    assert "missing 1 required positional argument: 'ready'" in str(bad.error)


def test_hooks_a_misspelt_hook_is_never_called(start: Any) -> None:
    class Journal(S.MisspeltHook):
        calls: list[str] = []

        async def on_before_node_initialize(self) -> None:
            Journal.calls.append("misspelt")

    S.Journal = Journal  # type: ignore[attr-defined]
    try:
        assert hook_problems(Journal)
        result = start(f"{MODULE}:Journal")
        assert result.error is None and Journal.calls == []  # Ray never called it
    finally:
        del S.Journal  # type: ignore[attr-defined]


def test_hooks_a_download_hook_writing_ctx_never_reaches_the_replica(start: Any) -> None:
    assert hook_problems(S.DownloadHookChangesCtx)
    result = start(f"{MODULE}:DownloadHookChangesCtx")
    assert result.error is None
    # The hook set NONE on the copy in Ray's download task; the replica's ctx never saw it.
    assert result.ctx["worker_node_download_model"] == "NodeModelDownloadable.MODEL_AND_TOKENIZER"
    assert "initialize_node" in result.steps  # Ray ran the hook (in its download task)


def built(cls: type) -> Any:
    """``cls`` built with Ray's keyword call (not by ``get_or_create_callback``, which would
    create a placement group on the cluster and keep it)."""
    return construct_as_ray(cls, build_ray_llm_config(deployment(f"{MODULE}:{cls.__name__}")))


def test_shippable(start: Any) -> None:
    assert shipping_problems(built(S.Unpicklable))
    result = start(f"{MODULE}:Unpicklable")
    assert "pickle" in str(result.error).lower() and "initialize_node" in result.steps
    assert not shipping_problems(built(S.GoodCallback))


def test_ctx_types_a_name_string_downloads_the_whole_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ray's download_model_files compares the choice with its enum: the string
    'TOKENIZER_ONLY' (WrongCtxType's) asks for the whole model, the member for the tokenizer."""
    from ray.llm._internal.common.utils import download_utils
    from ray.llm._internal.common.utils.cloud_utils import CloudMirrorConfig

    asked: list[bool] = []

    class Downloader:
        def __init__(self, *args: Any) -> None:
            pass

        def get_model(self, tokenizer_only: bool, exclude_safetensors: bool) -> str:
            asked.append(tokenizer_only)
            return "/models/m"

        def get_extra_files(self) -> None:
            return None

    monkeypatch.setattr(download_utils, "CloudModelDownloader", Downloader)
    monkeypatch.setattr(
        download_utils,
        "torch",
        type(
            "T",
            (),
            {"hub": type("H", (), {"_get_torch_home": staticmethod(lambda: str(tmp_path))})},
        ),
    )
    mirror = CloudMirrorConfig(bucket_uri="s3://bucket/m")
    for choice in ("TOKENIZER_ONLY", download_utils.NodeModelDownloadable.TOKENIZER_ONLY):
        download_utils.download_model_files("m", mirror, download_model=choice)
    assert asked == [False, True]


def test_ctx_types_a_runtime_env_ray_refuses(start: Any) -> None:
    from ray.runtime_env import RuntimeEnv

    with pytest.raises(Exception, match="env_vars"):
        RuntimeEnv(**{"env_vars": {"WORKERS": 4}})  # what BadRuntimeEnv leaves
    result = start(f"{MODULE}:BadRuntimeEnv")
    assert result.ctx["runtime_env"] == {"env_vars": {"WORKERS": 4}}
    good = start(f"{MODULE}:GoodCallback")
    assert good.error is None
    RuntimeEnv(**good.ctx["runtime_env"])  # Ray accepts what GoodCallback leaves
    assert not ctx_field_problems(built(S.GoodCallback).ctx, judge_custom_data=False)


def test_errors_a_base_exception_passes_rays_run_callback_whatever_it_is_told(
    start: Any,
) -> None:
    bad = start(f"{MODULE}:RaisesBaseException", raise_error_on_callback=False)
    assert type(bad.error).__name__ == "Abort"  # not swallowed, not wrapped
    good = start(f"{MODULE}:RaisingHook", raise_error_on_callback=False)
    assert good.error is None  # an Exception: Ray logged it and went on


def test_run(start: Any) -> None:
    bad = start(f"{MODULE}:RaisingHook")
    assert str(bad.error).startswith("Error running callback method 'on_before_node_init'")
    good = start(f"{MODULE}:GoodCallback", callback_kwargs={"marker": "x"})
    assert good.error is None and good.steps[-1] == ON_AFTER_NODE_INIT
    assert good.ctx["custom_data"] == {"marker": "x", "after": True}
