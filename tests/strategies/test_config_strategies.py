"""The config strategies generate valid ``LLMConfig`` parts that round-trip."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.runtime_env import RuntimeEnv
from rcs_test_helpers import reaches

from pytest_raycallbacks import strategies as rcs
from pytest_raycallbacks.sample_callbacks import SAMPLE_CALLBACKS
from reference_runner import TINY_MODEL_PATH, CallbackLoadError, LLMConfig, load_callback
from reference_runner.config import PlacementGroupConfig
from reference_runner.loading import spec_form_problem
from reference_runner.reserved import reserved_key_problem

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(rcs.llm_configs())
def test_every_config_validates_and_round_trips(config: LLMConfig) -> None:
    assert config.model_id == TINY_MODEL_PATH
    assert LLMConfig.model_validate(config.model_dump()) == config
    assert LLMConfig.model_validate_json(config.model_dump_json()) == config
    assert LLMConfig.from_yaml(config.to_yaml()) == config
    assert 1 <= config.num_devices <= 4
    if config.placement_group_config is not None:
        assert len(config.placement_group_config.bundles) == config.num_devices
    if config.runtime_env is not None:
        RuntimeEnv(**config.runtime_env)
    assert config.accelerator_type is None
    for spec in config.callbacks:
        assert callable(load_callback(spec))


@FAST
@given(
    rcs.llm_configs(
        model_id=st.sampled_from(["meta-llama/Llama-3.1-8B", "file:///models/x"]),
        max_devices=8,
        accelerator_types=("A100", "H100"),
        callbacks=st.lists(rcs.callback_paths(importable=False), min_size=1, max_size=2),
        model_cache_dir="/tmp/cache",
    )
)
def test_config_options(config: LLMConfig) -> None:
    assert config.model_id in ("meta-llama/Llama-3.1-8B", "file:///models/x")
    assert config.num_devices <= 8
    assert config.accelerator_type in (None, "A100", "H100")
    assert config.model_cache_dir == "/tmp/cache"
    assert LLMConfig.model_validate_json(config.model_dump_json()) == config


def test_configs_reach_every_option() -> None:
    configs = rcs.llm_configs(max_devices=8, accelerator_types=("A100",))
    assert reaches(configs, lambda c: c.num_devices == 8).num_devices == 8
    reaches(configs, lambda c: c.placement_group_config is not None)
    reaches(configs, lambda c: bool(c.runtime_env and c.runtime_env.get("env_vars")))
    reaches(configs, lambda c: c.accelerator_type == "A100")
    reaches(configs, lambda c: len(c.callbacks) == 3)
    reaches(configs, lambda c: c.engine_kwargs.get("dtype") == "bfloat16")
    fixed = reaches(rcs.llm_configs(model_id="m", callbacks=st.just([])), lambda c: True)
    assert (fixed.model_id, fixed.callbacks) == ("m", [])


@FAST
@given(rcs.callback_paths(), rcs.callback_paths(form="colon"), rcs.callback_paths(form="dot"))
def test_importable_paths_load(path: str, colon: str, dot: str) -> None:
    for spec in (path, colon, dot):
        assert spec_form_problem(spec) is None
        assert callable(load_callback(spec))
    assert ":" in colon and ":" not in dot


@FAST
@given(rcs.callback_paths(importable=False))
def test_absent_paths_are_well_formed_but_do_not_load(path: str) -> None:
    assert spec_form_problem(path) is None
    LLMConfig(model_id="m", callbacks=[path])
    with pytest.raises(CallbackLoadError):
        load_callback(path)


def test_every_sample_callback_is_reachable() -> None:
    for path in SAMPLE_CALLBACKS:
        assert reaches(rcs.callback_paths(form="colon"), lambda p, w=path: p == w) == path


@FAST
@given(rcs.runtime_envs())
def test_runtime_envs_are_accepted_by_ray(env: dict[str, Any]) -> None:
    RuntimeEnv(**env)
    assert reserved_key_problem("runtime_env", env) is None
    assert set(env) <= {"env_vars", "config"}


@FAST
@given(rcs.engine_kwargs(max_devices=6))
def test_engine_kwargs(kwargs: dict[str, Any]) -> None:
    config = LLMConfig(model_id="m", engine_kwargs=kwargs)
    assert config.num_devices <= 6


@FAST
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), rcs.placement_group_configs(n))))
def test_placement_group_configs(pair: tuple[int, PlacementGroupConfig]) -> None:
    n, pgc = pair
    assert len(pgc.bundles) == n
    assert all(bundle["GPU"] == 1.0 for bundle in pgc.bundles)
    PlacementGroupConfig.model_validate(pgc.model_dump())
