"""LLMConfig: validation, defaults, files, JSON/YAML round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
import pytest

from reference_runner import TINY_MODEL_PATH, LLMConfig
from reference_runner.config import PlacementGroupConfig


def module_level_callback(phase: str, config: Any, data: dict[str, Any]) -> None:
    return None


def test_minimal_config_and_defaults() -> None:
    config = LLMConfig(model_id=TINY_MODEL_PATH)
    assert config.callbacks == [] and config.engine_kwargs == {}
    assert config.num_devices == 1
    assert config.placement_bundles() == [{"GPU": 1.0}]
    assert config.placement_strategy() == "PACK"


def test_default_bundles_follow_parallel_sizes_and_accelerator_type() -> None:
    config = LLMConfig(
        model_id="m",
        engine_kwargs={"tensor_parallel_size": 2, "pipeline_parallel_size": 2},
        accelerator_type="A100",
    )
    assert config.num_devices == 4
    assert config.placement_bundles() == [{"GPU": 1.0, "accelerator_type:A100": 0.001}] * 4


def test_explicit_placement_group_config() -> None:
    config = LLMConfig(
        model_id="m",
        placement_group_config={"bundles": [{"CPU": 1, "GPU": 1}], "strategy": "STRICT_SPREAD"},
    )
    assert config.placement_bundles() == [{"CPU": 1.0, "GPU": 1.0}]
    assert config.placement_strategy() == "STRICT_SPREAD"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"model_id": "m", "unknown_field": 1}, "Extra inputs are not permitted"),
        ({"model_id": "m", "callbacks": ["cb"]}, "not fully qualified"),
        ({"model_id": "m", "callbacks": ["a..b"]}, "not a valid import path"),
        ({"model_id": "m", "callbacks": [42]}, "callbacks.0"),
        ({"model_id": "m", "engine_kwargs": {"tensor_parallel_size": 0}}, "positive int"),
        ({"model_id": "m", "placement_group_config": {"bundles": []}}, "at least one bundle"),
        (
            {"model_id": "m", "placement_group_config": {"bundles": [{"GPU": 0}]}},
            "asks for no resources",
        ),
        (
            {"model_id": "m", "placement_group_config": {"bundles": [{"GPU": 1}], "strategy": "X"}},
            "STRICT_SPREAD",
        ),
    ],
)
def test_invalid_configs_are_rejected_when_built(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=fragment):
        LLMConfig(**kwargs)


def test_specs_are_checked_for_form_but_not_imported() -> None:
    config = LLMConfig(model_id="m", callbacks=["not_installed_pkg.mod:cb"])
    assert config.callbacks == ["not_installed_pkg.mod:cb"]


def test_string_callbacks_round_trip_through_json_and_yaml() -> None:
    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        callbacks=["examples.logging_callback.log_initialization", "a.b:c"],
        engine_kwargs={"tensor_parallel_size": 2},
        runtime_env={"env_vars": {"A": "1"}},
        placement_group_config=PlacementGroupConfig(bundles=[{"GPU": 1}] * 2),
    )
    assert LLMConfig.model_validate_json(config.model_dump_json()) == config
    assert LLMConfig.from_yaml(config.to_yaml()) == config


def test_importable_callable_dumps_as_its_import_path() -> None:
    config = LLMConfig(model_id="m", callbacks=[module_level_callback])
    dumped = json.loads(config.model_dump_json())
    assert dumped["callbacks"] == [f"{__name__}:module_level_callback"]


@pytest.mark.parametrize(
    "callback",
    [lambda phase, config, data: None, type("C", (), {"__call__": lambda *a: None})()],
    ids=["lambda", "instance"],
)
def test_dumping_a_non_importable_callback_says_to_use_an_import_path(callback: Any) -> None:
    config = LLMConfig(model_id="m", callbacks=[callback])
    for dump in (config.model_dump_json, config.to_yaml):
        with pytest.raises(pydantic_core.PydanticSerializationError, match="import path such as"):
            dump()


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_from_file(tmp_path: Path, suffix: str) -> None:
    config = LLMConfig(model_id="m", callbacks=["a.b.c"])
    path = tmp_path / f"config{suffix}"
    path.write_text(config.to_yaml() if suffix != ".json" else config.model_dump_json())
    assert LLMConfig.from_file(path) == config


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("c.toml", "x", "use a .yaml, .yml or .json file"),
        ("c.yaml", "a: [", "not valid YAML"),
        ("c.json", "{", "not valid JSON"),
        ("c.yaml", "- 1\n", "must hold a mapping"),
        ("missing.yaml", None, "cannot read LLMConfig file"),
    ],
)
def test_from_file_errors(tmp_path: Path, name: str, text: str | None, fragment: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=fragment):
        LLMConfig.from_file(path)
