"""Differential test: ``CallbackBaseAdapter`` against Ray 2.60's own code.

Each subject class of ``ray_agreement_subjects`` is run twice:

* by Ray: built by Ray's ``LLMConfig(callback_config=...)`` and
  ``LLMConfig.get_or_create_callback()``, then driven as ``VLLMEngine.start`` drives it:
  ``await callback.run_callback("on_before_node_init")``; ``initialize_node(llm_config)``
  when ``callback.ctx.run_init_node``; ``await callback.run_callback("on_after_node_init")``;
* by the adapter: ``CallbackBaseAdapter(cls, callback_kwargs=..., raise_error_on_callback=...)``
  run by ``CallbackRunner.run_all`` through every phase;

and the two runs must agree on the constructor's arguments, ``ctx`` on entering and leaving
every hook (the subjects journal them, also on the shipped copy that runs the download
hook), the instance's final ``ctx``, and the error (type, message, cause).

Stubbed on Ray's side, and only these, because they need vLLM, torch or a Ray cluster:

* vLLM's ``AsyncEngineArgs`` and ``FrontendArgs``: when vLLM is not installed,
  ``vllm_models`` (Ray's ``VLLMEngineConfig``, which ``get_or_create_callback`` uses) is
  imported with stand-ins in their place, as the product does
  (``reference_runner.ray_llm``; they only sort ``engine_kwargs``);
* ``VLLMEngineConfig.get_or_create_pg`` returns the test's placement group (``None`` or
  an unplaced group) instead of creating one on a cluster;
* ``initialize_node``: instead of one Ray task per node of the placement group, the
  ``LLMConfig`` is shipped once with ``ray.cloudpickle`` (as a task argument is) and Ray's
  own ``initialize_remote_node`` runs on the copy, in this process, with torch's cache
  folder (``download_model_files`` creates ``<torch home>/kernels``) under ``tmp_path``
  when torch is not installed. Ray's model download itself is not reached: the model id is
  a plain name, so ``download_model_files`` returns it after the download hook. An error in
  the download hook therefore surfaces as itself here, where a cluster would wrap it in a
  ``RayTaskError``.

The last three tests were disagreements found by this test, fixed in the adapter:
``run_init_node = False`` leaves ``ctx.worker_node_download_model`` as the class left it,
a missing runtime env is ``{"env_vars": {}}`` in ``ctx``, and the Hugging Face tokens of
the environment are copied into ``ctx.runtime_env["env_vars"]``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import types
from pathlib import Path
from typing import Any

import pytest
import ray_agreement_subjects as S

from reference_runner import TINY_MODEL_PATH, CallbackRunner
from reference_runner import LLMConfig as ReferenceLLMConfig
from reference_runner.ray_callback_base import CallbackBaseAdapter
from reference_runner.ray_callback_ctx import unplaced_placement_group

VLLM_MODELS = "ray.llm._internal.serve.engines.vllm.vllm_models"
RUNTIME_ENV = {"env_vars": {"A": "1"}}
HF_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


# ---------------------------------------------------------------------- Ray's side


@pytest.fixture(scope="module")
def vllm_engine_config() -> type:
    """Ray's ``VLLMEngineConfig``, imported as the product imports it: with vLLM's two
    argument classes stood in when vLLM is not installed
    (:func:`reference_runner.ray_llm.ray_engine_config_module`)."""
    from reference_runner.ray_llm import ray_engine_config_module

    engine_config: type = ray_engine_config_module().VLLMEngineConfig
    return engine_config


@dataclasses.dataclass
class Outcome:
    """One run: the journal, the instance (``None`` if construction failed), the error."""

    journal: list[tuple[str, dict[str, Any]]]
    instance: Any
    error: BaseException | None


@pytest.fixture
def ray_start(vllm_engine_config: type, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``run(cls, callback_kwargs, raise_error_on_callback, runtime_env, placement_group)``
    runs ``cls`` through Ray's engine start (stubbed as the module docstring says)."""
    from ray import cloudpickle
    from ray.llm._internal.common.utils import download_utils
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig
    from ray.llm._internal.serve.utils import node_initialization_utils

    if download_utils.torch is None:
        torch_home = str(tmp_path / "torch")
        hub = types.SimpleNamespace(_get_torch_home=lambda: torch_home)
        monkeypatch.setattr(download_utils, "torch", types.SimpleNamespace(hub=hub))

    async def initialize_node_without_a_cluster(llm_config: Any) -> None:
        shipped = cloudpickle.loads(cloudpickle.dumps(llm_config))
        path = node_initialization_utils.initialize_remote_node(shipped)
        llm_config.get_engine_config().hf_model_id = path

    async def engine_start(llm_config: Any) -> Any:
        callback = llm_config.get_or_create_callback()
        await callback.run_callback("on_before_node_init")
        if callback.ctx.run_init_node:
            await initialize_node_without_a_cluster(llm_config)
        await callback.run_callback("on_after_node_init")
        return callback

    def run(
        cls: type,
        callback_kwargs: dict[str, Any],
        raise_error_on_callback: bool = True,
        runtime_env: dict[str, Any] | None = RUNTIME_ENV,
        placement_group: Any = None,
    ) -> Outcome:
        monkeypatch.setattr(vllm_engine_config, "get_or_create_pg", lambda self: placement_group)
        llm_config = LLMConfig(
            model_loading_config={"model_id": "agreement-model"},
            llm_engine="vLLM",
            # A copy: Ray writes into the nested env_vars dict of the one it is given.
            runtime_env=copy.deepcopy(runtime_env),
            callback_config={
                "callback_class": cls,
                "callback_kwargs": callback_kwargs,
                "raise_error_on_callback": raise_error_on_callback,
            },
        )
        S.JOURNAL.clear()
        error = None
        try:
            asyncio.run(engine_start(llm_config))
        except Exception as exc:
            error = exc
        return Outcome(list(S.JOURNAL), llm_config._callback_instance, error)

    return run


# ---------------------------------------------------------------------- the adapter's side


@pytest.fixture
def adapter_start(tmp_path: Path) -> Any:
    """``run(cls, callback_kwargs, raise_error_on_callback, runtime_env, data)`` runs
    ``cls`` through ``CallbackBaseAdapter`` and ``CallbackRunner.run_all``."""

    def run(
        cls: type,
        callback_kwargs: dict[str, Any],
        raise_error_on_callback: bool = True,
        runtime_env: dict[str, Any] | None = RUNTIME_ENV,
        data: dict[str, Any] | None = None,
    ) -> Outcome:
        config = ReferenceLLMConfig(
            model_id=TINY_MODEL_PATH,
            runtime_env=copy.deepcopy(runtime_env),
            model_cache_dir=str(tmp_path / "models"),
        )
        S.JOURNAL.clear()
        hooked: CallbackBaseAdapter | None = None
        error = None
        try:
            hooked = CallbackBaseAdapter(
                cls,
                callback_kwargs=callback_kwargs,
                raise_error_on_callback=raise_error_on_callback,
            )
            asyncio.run(CallbackRunner([hooked], data=data).run_all(config))
        except Exception as exc:
            error = exc
        return Outcome(list(S.JOURNAL), None if hooked is None else hooked.instance, error)

    return run


# ---------------------------------------------------------------------- comparing


def describe_error(error: BaseException | None) -> tuple[Any, ...] | None:
    if error is None:
        return None
    cause = error.__cause__
    return (
        type(error).__name__,
        str(error),
        None if cause is None else (type(cause).__name__, str(cause)),
    )


def assert_agree(ray: Outcome, ours: Outcome) -> None:
    assert ours.journal == ray.journal
    assert describe_error(ours.error) == describe_error(ray.error)
    assert (ours.instance is None) == (ray.instance is None)
    if ray.instance is not None:
        assert S.ctx_snapshot(ours.instance.ctx) == S.ctx_snapshot(ray.instance.ctx)


@pytest.fixture(autouse=True)
def _no_hf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray copies these into ctx.runtime_env; only the test that sets one wants them."""
    for name in HF_TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------- agreement


CASES = [
    pytest.param(S.KwargsTestCallback, {"kwargs_test_key": "kwargs_test_value"}, id="kwargs"),
    pytest.param(S.ChangesCtxInEveryHook, {"marker": "m"}, id="ctx-every-hook"),
    pytest.param(S.PlainDefHooks, {}, id="plain-def-hooks"),
]


@pytest.mark.parametrize(("cls", "callback_kwargs"), CASES)
def test_hooks_and_ctx_agree(
    ray_start: Any, adapter_start: Any, cls: type, callback_kwargs: dict[str, Any]
) -> None:
    ray = ray_start(cls, callback_kwargs)
    ours = adapter_start(cls, callback_kwargs)
    assert ray.error is None, ray.error
    assert ray.journal[0][0] == "init"
    assert_agree(ray, ours)


def test_the_kwargs_test_callback_runs_as_in_rays_own_test(ray_start: Any) -> None:
    """The same expectations as Ray's ``test_callback_methods_called``: the hooks ran,
    node init was skipped, and the kwargs reached the constructor."""
    ray = ray_start(S.KwargsTestCallback, {"kwargs_test_key": "kwargs_test_value"})
    assert [event for event, _ in ray.journal] == [
        "init",
        "before:enter",
        "before:leave",
        "after:enter",
        "after:leave",
    ]
    assert ray.journal[0][1]["kwargs"] == {"kwargs_test_key": "kwargs_test_value"}


def test_a_constructor_assertion_agrees(ray_start: Any, adapter_start: Any) -> None:
    ray = ray_start(S.KwargsTestCallback, {"kwargs_test_key": "wrong"})
    ours = adapter_start(S.KwargsTestCallback, {"kwargs_test_key": "wrong"})
    assert isinstance(ray.error, AssertionError)
    assert_agree(ray, ours)


def test_a_constructor_error_agrees(ray_start: Any, adapter_start: Any) -> None:
    ray = ray_start(S.RaisesIn, {})
    ours = adapter_start(S.RaisesIn, {})
    assert isinstance(ray.error, ValueError)
    assert "fail_in" in str(ray.error)
    assert_agree(ray, ours)


@pytest.mark.parametrize("fail_in", ["before", "download", "after"])
@pytest.mark.parametrize("raise_error_on_callback", [True, False])
def test_hook_errors_agree(
    ray_start: Any,
    adapter_start: Any,
    fail_in: str,
    raise_error_on_callback: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kwargs = {"fail_in": fail_in}
    ray = ray_start(S.RaisesIn, kwargs, raise_error_on_callback)
    ours = adapter_start(S.RaisesIn, kwargs, raise_error_on_callback)
    if raise_error_on_callback:
        assert type(ray.error) is Exception
        assert isinstance(ray.error.__cause__, S.HookFailed)
    else:
        assert ray.error is None
    assert_agree(ray, ours)


def test_a_placement_group_given_at_construction_agrees(ray_start: Any, adapter_start: Any) -> None:
    """Ray puts the replica's group in ``ctx`` before the first hook; the adapter does when
    ``data`` holds one (docs/ray_callback_base.md: otherwise it is ``None`` there)."""
    group = unplaced_placement_group()
    ray = ray_start(S.ChangesCtxInEveryHook, {}, placement_group=group)
    ours = adapter_start(S.ChangesCtxInEveryHook, {}, data={"placement_group": group})
    assert ray.journal[0][1]["ctx"]["placement_group"] == group.id.hex()
    assert_agree(ray, ours)


# ---------------------------------------------------------------------- former disagreements


def test_run_init_node_false_agrees(ray_start: Any, adapter_start: Any) -> None:
    ray = ray_start(S.NoInitNode, {})
    ours = adapter_start(S.NoInitNode, {})
    assert [event for event, _ in ray.journal] == [
        "init",
        "before:enter",
        "before:leave",
        "after:enter",
        "after:leave",
    ]  # no download hook: Ray skipped initialize_node
    assert [event for event, _ in ours.journal] == [event for event, _ in ray.journal]
    after = ray.journal[3][1]["ctx"]["worker_node_download_model"]
    assert after.endswith(".MODEL_AND_TOKENIZER")
    assert_agree(ray, ours)


def test_no_runtime_env_agrees(ray_start: Any, adapter_start: Any) -> None:
    ray = ray_start(S.PlainDefHooks, {}, runtime_env=None)
    ours = adapter_start(S.PlainDefHooks, {}, runtime_env=None)
    assert ray.journal[0][1]["ctx"]["runtime_env"] == {"env_vars": {}}
    assert_agree(ray, ours)


def test_hf_token_propagation_agrees(
    ray_start: Any, adapter_start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf-test-token")
    ray = ray_start(S.PlainDefHooks, {})
    ours = adapter_start(S.PlainDefHooks, {})
    assert ray.journal[0][1]["ctx"]["runtime_env"]["env_vars"]["HF_TOKEN"] == "hf-test-token"
    assert_agree(ray, ours)
