"""Reading what users deploy: ``pytest_raycallbacks.serve_config`` (issue 17)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_raycallbacks.serve_config import (
    ServeConfigError,
    for_the_run,
    read_serve_config,
)
from reference_runner import TINY_MODEL_PATH
from reference_runner.loading import split_label

SERVE = """\
applications:
  - name: frontend
    import_path: my_app:app
  - name: llm-app
    import_path: ray.serve.llm:build_openai_app
    args:
      llm_configs:
        - model_loading_config:
            model_id: plain
          accelerator_type: L4
        - model_loading_config:
            model_id: warm
            model_source: Qwen/Qwen2.5-0.5B-Instruct
          accelerator_type: L4
          callback_config:
            callback_class: pkg.cbs:Warm
            callback_kwargs: {bucket: "s3://b", token: secret}
        - model_loading_config:
            model_id: cold
          callback_config:
            callback_class: pkg.cbs:Warm
            callback_kwargs: {bucket: "s3://c"}
            raise_error_on_callback: false
"""


def write(tmp_path: Path, text: str, name: str = "serve.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_entries_name_app_model_and_place(tmp_path: Path) -> None:
    parsed = read_serve_config(write(tmp_path, SERVE))
    assert parsed.kind == "serve config"
    warm, cold = parsed.entries
    assert (warm.spec, cold.spec) == ("pkg.cbs:Warm@llm-app/warm", "pkg.cbs:Warm@llm-app/cold")
    assert warm.place.endswith("serve.yaml:11: applications[1] 'llm-app'.args.llm_configs[1]")
    assert cold.place.endswith("serve.yaml:18: applications[1] 'llm-app'.args.llm_configs[2]")
    assert warm.callback_kwargs == {"bucket": "s3://b", "token": "secret"}
    assert cold.raise_error_on_callback is False
    assert parsed.without_callback[0].endswith("llm_configs[0]")
    record = warm.record()
    assert record["callback_kwargs"] == {"bucket": "s3://b", "token": "***"}  # masked
    assert split_label(warm.spec) == ("pkg.cbs:Warm", "llm-app/warm")


def test_the_config_hash_ignores_secret_values_and_sees_everything_else(tmp_path: Path) -> None:
    warm = read_serve_config(write(tmp_path, SERVE)).entries[0]
    rotated = read_serve_config(write(tmp_path, SERVE.replace("secret", "other"), "b.yaml"))
    assert rotated.entries[0].config_sha256() == warm.config_sha256()
    bigger = read_serve_config(write(tmp_path, SERVE.replace("L4", "A100"), "c.yaml"))
    assert bigger.entries[0].config_sha256() != warm.config_sha256()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a Ray Serve config"),
        ("foo: 1\n", "neither a Ray Serve config"),
        (
            "applications:\n  - name: a\n    import_path: x:y\n",
            "no application has args.llm_configs",
        ),
        (
            "applications:\n  - name: a\n    args:\n      llm_configs:\n"
            "        - model_loading_config: {model_id: m}\n",
            "no llm_config in it has a callback_config",
        ),
        (
            "model_loading_config: {model_id: m}\ncallback_config: {callback_class: a.b:C, x: 1}\n",
            "Ray's CallbackConfig has no field(s) ['x']",
        ),
        (
            "model_loading_config: {model_id: m}\nllm_engine: vLLM\nengine_kwargs: 3\n",
            "Ray's LLMConfig refused it: engine_kwargs",
        ),
    ],
)
def test_what_cannot_be_certified_says_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ServeConfigError, match=re.escape(message)):
        read_serve_config(write(tmp_path, text))


def test_verify_reads_without_ray(tmp_path: Path) -> None:
    text = "model_loading_config: {model_id: m}\naccelerator_type: NOT-A-GPU\n"
    text += "callback_config: {callback_class: a.b:C}\n"
    path = write(tmp_path, text)
    with pytest.raises(ServeConfigError, match="Unsupported accelerator type"):
        read_serve_config(path)
    (entry,) = read_serve_config(path, validate=False).entries
    assert entry.spec == "a.b:C@m"


SOURCES = st.one_of(
    st.none(),
    st.sampled_from(["Qwen/Qwen2.5-0.5B-Instruct", "s3://served/m", "s3://other/m", "gs://x/y"]),
    st.just(TINY_MODEL_PATH),
    st.fixed_dictionaries({"bucket_uri": st.sampled_from(["s3://served/m", "s3://other/m"])}),
)


@given(
    source=SOURCES,
    extra=st.dictionaries(st.sampled_from(["engine_kwargs", "runtime_env"]), st.just({"k": 1})),
)
def test_for_the_run_replaces_only_what_the_kit_cannot_serve(source: Any, extra: Any) -> None:
    loading: dict[str, Any] = {"model_id": "m"}
    if source is not None:
        loading["model_source"] = source
    config = {"model_loading_config": loading, **extra}
    original = copy.deepcopy(config)
    run, replaced = for_the_run(config, model_source="/offline", served_buckets=["served"])
    assert config == original  # never written into
    kept = (
        source == TINY_MODEL_PATH
        or ("served" in str(source) and str(source).startswith(("s3://", "{")))
        or (isinstance(source, dict) and source["bucket_uri"] == "s3://served/m")
    )
    got = run["model_loading_config"].get("model_source")
    if kept:
        assert got == source and replaced == {}
    else:
        assert got == "/offline"
        assert replaced == {"model_source": {"deployed": source, "certified_with": "/offline"}}
    assert {k: v for k, v in run.items() if k != "model_loading_config"} == extra


@given(
    st.from_regex(r"[a-z_]+(\.[a-z_]+)*:[A-Z][a-zA-Z]*", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[a-z0-9-]+(/[a-z0-9.-]+)?", fullmatch=True)),
)
def test_a_label_never_changes_the_import_path(path: str, label: str | None) -> None:
    spec = path if label is None else f"{path}@{label}"
    assert split_label(spec) == (path, label)
