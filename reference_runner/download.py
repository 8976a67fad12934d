"""The reference model download: copy a model folder into a per-node cache.

``download_model`` copies what a :class:`NodeModelDownloadable` asks for from a local folder
(or ``file://`` URI) into ``<cache>/<node id>/<model name>``. It mirrors Ray Serve LLM's
file selection: TOKENIZER_ONLY takes files whose name contains ``tokenizer``,
``config.json`` or ``chat_template``; EXCLUDE_SAFETENSORS takes everything but
``*.safetensors``; MODEL_AND_TOKENIZER takes everything; NONE takes nothing.

It is idempotent (a file already there with the same size and mtime is not copied again),
each file appears atomically (copied to a temporary name, then renamed), and concurrent
downloads to the same node directory are serialized by a file lock with a bounded wait.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlparse

from .downloadable import NodeModelDownloadable
from .errors import ModelSourceError

TOKENIZER_SUBSTRINGS: Final = ("tokenizer", "config.json", "chat_template")
DEFAULT_LOCK_TIMEOUT_S: Final = 120.0
CACHE_ENV_VAR: Final = "RAYCALLBACKS_MODEL_CACHE"


@dataclass(frozen=True)
class NodeDownload:
    """What one node holds after a download."""

    node_id: str
    downloadable: NodeModelDownloadable
    path: str
    files: tuple[str, ...]
    copied: tuple[str, ...]

    def united_with(self, other: NodeDownload) -> NodeDownload:
        """What the node holds after both downloads."""
        return NodeDownload(
            node_id=self.node_id,
            downloadable=self.downloadable.union(other.downloadable),
            path=other.path,
            files=tuple(sorted(set(self.files) | set(other.files))),
            copied=tuple(sorted(set(self.copied) | set(other.copied))),
        )


@dataclass(frozen=True)
class ModelDownloadResult:
    """The outcome of the model download on every node that downloaded.

    ``nodes`` maps node id to :class:`NodeDownload`; ``local_node_id`` is the node
    ``initialize_node`` ran on (its entry is :attr:`local`).
    """

    model_id: str
    source: str
    local_node_id: str | None
    nodes: Mapping[str, NodeDownload] = field(default_factory=dict)

    @property
    def local(self) -> NodeDownload | None:
        """The local node's download, if it downloaded anything."""
        return None if self.local_node_id is None else self.nodes.get(self.local_node_id)

    def with_nodes(self, more: Mapping[str, NodeDownload]) -> ModelDownloadResult:
        """A copy with ``more`` node downloads added (a node's choices are united)."""
        merged = dict(self.nodes)
        for node_id, download in more.items():
            earlier = merged.get(node_id)
            merged[node_id] = download if earlier is None else earlier.united_with(download)
        return ModelDownloadResult(self.model_id, self.source, self.local_node_id, merged)


def resolve_model_source(model_id: str) -> Path:
    """Return the local folder ``model_id`` names (a path or ``file://`` URI).

    Raises :class:`ModelSourceError` if it is not an existing folder.
    """
    if model_id.startswith("file://"):
        parsed = urlparse(model_id)
        path = Path(unquote(parsed.path))
    elif "://" in model_id:
        raise ModelSourceError(
            f"model source {model_id!r} uses a scheme the reference download does not "
            "support; give a local folder or a file:// URI"
        )
    else:
        path = Path(model_id).expanduser()
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise ModelSourceError(
            f"model source {model_id!r} ({path}) {what}; set LLMConfig.model_id to a local "
            "model folder or file:// URI (reference_runner.TINY_MODEL_PATH is a bundled one)"
        )
    return path


def default_cache_dir() -> Path:
    """``$RAYCALLBACKS_MODEL_CACHE`` or ``~/.cache/raycallbacks/models``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "raycallbacks" / "models"


def select_files(source: Path, downloadable: NodeModelDownloadable) -> list[str]:
    """Relative paths (sorted) of the files ``downloadable`` takes from ``source``."""
    if not downloadable:
        return []
    selected = []
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(source).as_posix()
        name = path.name
        if downloadable is NodeModelDownloadable.TOKENIZER_ONLY:
            keep = any(s in name for s in TOKENIZER_SUBSTRINGS)
        elif downloadable is NodeModelDownloadable.EXCLUDE_SAFETENSORS:
            keep = not name.endswith(".safetensors")
        else:
            keep = True
        if keep:
            selected.append(rel)
    return selected


def download_model(
    model_id: str,
    downloadable: NodeModelDownloadable | str = NodeModelDownloadable.MODEL_AND_TOKENIZER,
    *,
    node_id: str = "local",
    cache_dir: str | os.PathLike[str] | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> NodeDownload:
    """Copy the files ``downloadable`` selects from ``model_id`` into this node's cache.

    Returns the node's :class:`NodeDownload`: its folder, every selected file, and the
    files this call copied (empty when everything was already there).
    """
    choice = NodeModelDownloadable.coerce(downloadable)
    source = resolve_model_source(model_id)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / _safe_name(node_id) / _safe_name(source.name or "model")
    files = select_files(source, choice)
    copied: list[str] = []
    if files:
        target.mkdir(parents=True, exist_ok=True)
        with _locked(target / ".download.lock", lock_timeout_s):
            for rel in files:
                if _copy_if_changed(source / rel, target / rel):
                    copied.append(rel)
    return NodeDownload(
        node_id=node_id,
        downloadable=choice,
        path=str(target),
        files=tuple(files),
        copied=tuple(copied),
    )


def _copy_if_changed(src: Path, dst: Path) -> bool:
    stat = src.stat()
    with contextlib.suppress(FileNotFoundError):
        existing = dst.stat()
        if existing.st_size == stat.st_size and int(existing.st_mtime) == int(stat.st_mtime):
            return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out)
        os.utime(tmp, (stat.st_atime, stat.st_mtime))
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


@contextlib.contextmanager
def _locked(lock_path: Path, timeout_s: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout_s
    with open(lock_path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another download held {lock_path} for more than {timeout_s:g} s; "
                        "if no download is running, a crashed process may hold it: retry"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned.strip(".") or "_"
