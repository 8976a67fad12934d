"""nodes_missing_model: which nodes lack what the worker download choice asks for."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_runner import TINY_MODEL_PATH, ModelDownloadResult, NodeModelDownloadable
from reference_runner.download import download_model
from reference_runner.download_check import covers, nodes_missing_model

CHOICES = list(NodeModelDownloadable)


def result_with(tmp_path: Path, **choices: str) -> ModelDownloadResult:
    nodes = {
        node: download_model(TINY_MODEL_PATH, choice, node_id=node, cache_dir=tmp_path)
        for node, choice in choices.items()
    }
    return ModelDownloadResult(TINY_MODEL_PATH, TINY_MODEL_PATH, "head", nodes)


def test_nodes_holding_the_choice_are_not_missing(tmp_path: Path) -> None:
    result = result_with(tmp_path, a="MODEL_AND_TOKENIZER", b="MODEL_AND_TOKENIZER")
    assert nodes_missing_model(["a", "b", "a"], result, on_disk=True) == {}


def test_each_way_of_lacking_the_model_is_reported(tmp_path: Path) -> None:
    result = result_with(tmp_path, head="TOKENIZER_ONLY", full="MODEL_AND_TOKENIZER")
    partial = dataclasses.replace(result.nodes["full"], files=("config.json",))
    result = dataclasses.replace(result, nodes=dict(result.nodes, partial=partial))
    missing = nodes_missing_model(["head", "full", "partial", "absent"], result)
    assert set(missing) == {"head", "partial", "absent"}
    assert "downloaded TOKENIZER_ONLY" in missing["head"]
    assert "model.safetensors" in missing["partial"]
    assert "no download ran on it" in missing["absent"]


def test_on_disk_sees_files_removed_after_the_download(tmp_path: Path) -> None:
    result = result_with(tmp_path, a="MODEL_AND_TOKENIZER")
    assert nodes_missing_model(["a"], result, on_disk=True) == {}
    (Path(result.nodes["a"].path) / "model.safetensors").unlink()
    assert nodes_missing_model(["a"], result) == {}, "the record alone still says it is there"
    assert "model.safetensors" in nodes_missing_model(["a"], result, on_disk=True)["a"]


def test_choice_none_and_a_missing_result(tmp_path: Path) -> None:
    assert nodes_missing_model(["a"], None, "NONE") == {}
    assert set(nodes_missing_model(["a", "b"], None)) == {"a", "b"}
    with pytest.raises(ValueError, match="NodeModelDownloadable"):
        nodes_missing_model(["a"], None, "EVERYTHING")


@given(st.sampled_from(CHOICES), st.sampled_from(CHOICES))
def test_covers_is_the_order_of_union(
    held: NodeModelDownloadable, asked: NodeModelDownloadable
) -> None:
    assert covers(held, asked) == (held.union(asked) is held)
    assert covers(held, held) and covers(held, NodeModelDownloadable.NONE)
    assert covers(held.union(asked), held) and covers(held.union(asked), asked)
