"""download_model: file selection, idempotence, atomic files, concurrent downloads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reference_runner import (
    TINY_MODEL_PATH,
    ModelSourceError,
    NodeModelDownloadable,
    download_model,
)
from reference_runner.download import ModelDownloadResult, NodeDownload
from tests.tiny_model_files import ALL_FILES


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (NodeModelDownloadable.MODEL_AND_TOKENIZER, ALL_FILES),
        (NodeModelDownloadable.EXCLUDE_SAFETENSORS, ALL_FILES - {"model.safetensors"}),
        (
            NodeModelDownloadable.TOKENIZER_ONLY,
            {
                "chat_template.jinja",
                "config.json",
                "generation_config.json",
                "tokenizer.json",
                "tokenizer_config.json",
            },
        ),
        (NodeModelDownloadable.NONE, set()),
    ],
)
def test_selection_and_copy(
    tmp_path: Path, choice: NodeModelDownloadable, expected: set[str]
) -> None:
    result = download_model(TINY_MODEL_PATH, choice, node_id="node-a", cache_dir=tmp_path)
    assert set(result.files) == expected == set(result.copied)
    target = Path(result.path)
    on_disk = {p.name for p in target.glob("*")} - {".download.lock"} if target.exists() else set()
    assert on_disk == expected
    for name in expected:
        assert (target / name).read_bytes() == (Path(TINY_MODEL_PATH) / name).read_bytes()
    assert target.parent.name == "node-a"


def test_download_is_idempotent_and_accepts_names_and_file_uris(tmp_path: Path) -> None:
    uri = Path(TINY_MODEL_PATH).as_uri()
    first = download_model(uri, "MODEL_AND_TOKENIZER", cache_dir=tmp_path)
    again = download_model(TINY_MODEL_PATH, "MODEL_AND_TOKENIZER", cache_dir=tmp_path)
    assert first.copied and again.copied == () and again.files == first.files
    assert not [
        p for p in Path(first.path).iterdir() if p.name.startswith(".") and "lock" not in p.name
    ]


def test_changed_source_file_is_copied_again(tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "model"
    shutil.copytree(TINY_MODEL_PATH, source)
    download_model(str(source), cache_dir=tmp_path / "cache")
    (source / "config.json").write_text('{"changed": true, "longer": "yes"}')
    again = download_model(str(source), cache_dir=tmp_path / "cache")
    assert again.copied == ("config.json",)


def _spawn_download(cache: Path, node: str, lock_timeout_s: float = 60) -> subprocess.Popen[str]:
    code = (
        "import sys; from reference_runner import download_model, TINY_MODEL_PATH\n"
        f"r = download_model(TINY_MODEL_PATH, node_id={node!r}, cache_dir={str(cache)!r},"
        f" lock_timeout_s={lock_timeout_s})\n"
        "print(','.join(r.files))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_concurrent_downloads_to_the_same_node_are_safe(tmp_path: Path) -> None:
    processes = [_spawn_download(tmp_path, "n") for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert all(set(out.strip().split(",")) == ALL_FILES for out, _ in outputs)
    target = tmp_path / "n" / "tiny-model"
    assert {p.name for p in target.iterdir()} == ALL_FILES | {".download.lock"}
    for name in ALL_FILES:
        assert (target / name).read_bytes() == (Path(TINY_MODEL_PATH) / name).read_bytes()


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("/definitely/not/here", "does not exist"),
        (__file__, "is not a folder"),
        ("s3://bucket/model", "scheme the reference download does not support"),
    ],
)
def test_bad_model_source(tmp_path: Path, source: str, fragment: str) -> None:
    with pytest.raises(ModelSourceError, match=fragment) as info:
        download_model(source, cache_dir=tmp_path)
    assert "LLMConfig.model_id" in str(info.value) or "local folder" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_lock_wait_is_bounded(tmp_path: Path) -> None:
    import fcntl

    target = tmp_path / "n" / "tiny-model"
    target.mkdir(parents=True)
    with open(target / ".download.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        process = _spawn_download(tmp_path, "n", lock_timeout_s=0.2)
        _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "TimeoutError" in err and "for more than 0.2 s" in err


def test_results_unite_per_node() -> None:
    tok = NodeDownload("n", NodeModelDownloadable.TOKENIZER_ONLY, "/p", ("config.json",), ())
    full = NodeDownload(
        "n", NodeModelDownloadable.EXCLUDE_SAFETENSORS, "/p", ("README.md",), ("README.md",)
    )
    result = ModelDownloadResult("m", "/src", "n", {"n": tok}).with_nodes({"n": full, "w": full})
    assert result.local is not None
    assert result.local.downloadable is NodeModelDownloadable.EXCLUDE_SAFETENSORS
    assert result.local.files == ("README.md", "config.json")
    assert set(result.nodes) == {"n", "w"}


def test_node_model_downloadable_matches_ray() -> None:
    assert not NodeModelDownloadable.NONE
    assert all(m for m in NodeModelDownloadable if m is not NodeModelDownloadable.NONE)
    union = NodeModelDownloadable.TOKENIZER_ONLY.union(NodeModelDownloadable.EXCLUDE_SAFETENSORS)
    assert union is NodeModelDownloadable.EXCLUDE_SAFETENSORS
    assert (
        NodeModelDownloadable.NONE.union(NodeModelDownloadable.NONE) is NodeModelDownloadable.NONE
    )
    with pytest.raises(ValueError, match="one of its names"):
        NodeModelDownloadable.coerce("tokenizer_only")


def _ray_node_model_downloadable() -> type:
    """Ray's own class, executed from its source (importing the module needs pyarrow)."""
    import ast
    import enum
    import importlib.util

    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        pytest.skip("ray is not installed")
    path = Path(spec.origin).parent / "llm/_internal/common/utils/download_utils.py"
    tree = ast.parse(path.read_text())
    node = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "NodeModelDownloadable"
    )
    namespace: dict[str, object] = {"enum": enum}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["NodeModelDownloadable"]  # type: ignore[return-value]


def test_node_model_downloadable_behaves_exactly_as_rays() -> None:
    theirs = _ray_node_model_downloadable()
    assert [m.name for m in theirs] == [m.name for m in NodeModelDownloadable]  # type: ignore[attr-defined]
    for a in theirs:  # type: ignore[attr-defined]
        assert bool(a) == bool(NodeModelDownloadable[a.name])
        for b in theirs:  # type: ignore[attr-defined]
            ours = NodeModelDownloadable[a.name].union(NodeModelDownloadable[b.name])
            assert ours.name == a.union(b).name
