"""The warm cluster's state file: where it is, what it says, and whether it still holds.

The warm cluster (:mod:`.warm`) outlives the command that started it, so what later runs
need to find it, and to end exactly its processes, is written to a JSON file:
``$RAYCALLBACKS_STATE_DIR/warm-cluster.json`` (default: ``$XDG_STATE_HOME/raycallbacks``,
else ``~/.local/state/raycallbacks``). Contract:

* :class:`WarmState` is that file's content: the GCS address, the ownership token every
  process of the cluster carries, the cluster's folder, the pid of its keeper process (the
  daemon of :mod:`.warm_daemon`), this machine's boot id, the topology, the Ray version and
  the Python (interpreter and environment prefix) it runs.
* :func:`write_state` writes atomically (a crash never leaves half a file);
  :func:`read_state` returns ``None`` when there is no file, and raises
  :class:`StateFileError` when it cannot be read as a state.
* :func:`health` says whether a state still describes a working cluster: ``up``, or
  ``stale`` (written before the last reboot; its keeper process is gone; unreadable), or
  ``unhealthy`` (the keeper runs but the GCS does not answer), with the reason. Cheap: no
  Ray, one bounded TCP connect.
* :func:`discard` removes what a stale state left: the processes still carrying its token
  (only on the boot that wrote it: after a reboot its pids mean nothing), its folder, and
  the file (only if it still holds that state). :func:`discard_unreadable` does the same
  for a file :func:`read_state` refuses, with whatever token and folder it still names.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from .processes import SCAN_SUPPORTED, OwnedProcess, processes_with_token

STATE_DIR_ENV: Final = "RAYCALLBACKS_STATE_DIR"
STATE_FILE: Final = "warm-cluster.json"
BOOT_ID_FILE: Final = Path("/proc/sys/kernel/random/boot_id")
FORMAT: Final = 1
#: How long the health check waits for the GCS to accept a connection.
PROBE_S: Final = 1.0

Status = Literal["up", "stale", "unhealthy"]


class StateFileError(ValueError):
    """The state file exists but is not a warm cluster's state."""


@dataclass(frozen=True)
class WarmState:
    """What a warm cluster's state file holds (see the module doc)."""

    address: str
    token: str
    temp_dir: str
    pid: int
    boot_id: str
    started_at: float
    topology: str
    node_ids: tuple[str, ...]
    ray_version: str
    python: str
    prefix: str
    log_path: str
    format: int = FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        """Total logical GPUs of the topology (``"0:2,2:2:A100,2:2"`` -> 4)."""
        return sum(int(entry.split(":")[0]) for entry in self.topology.split(","))

    def summary(self) -> str:
        """``3 node(s), 4 GPU(s) at 10.0.0.1:6379`` for messages and headers."""
        return f"{len(self.node_ids)} node(s), {self.gpus} GPU(s) at {self.address}"


@dataclass(frozen=True)
class Health:
    """A state's health: ``up``, ``stale`` or ``unhealthy``, and why."""

    status: Status
    reason: str

    @property
    def up(self) -> bool:
        return self.status == "up"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user folder of the warm cluster's state (see the module doc)."""
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "raycallbacks"


def state_path(env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / STATE_FILE


def boot_id() -> str:
    """This boot's id (``""`` where the system does not say)."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def read_state(path: Path | None = None) -> WarmState | None:
    """The state in ``path`` (default :func:`state_path`); ``None`` when there is none."""
    path = path or state_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read the warm cluster's state file {path}: {exc}") from exc
    try:
        raw = json.loads(text)
        raw["node_ids"] = tuple(raw["node_ids"])
        return WarmState(**raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise StateFileError(
            f"the warm cluster's state file {path} is not one this version wrote ({exc}); "
            "'raycallbacks cluster down' removes it and ends the cluster it names"
        ) from exc


def write_state(state: WarmState, path: Path | None = None) -> Path:
    """Write ``state`` atomically to ``path`` (default :func:`state_path`)."""
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".warm-", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(state), out, indent=2)
    os.replace(tmp, path)
    return path


def remove_state(state: WarmState, path: Path | None = None) -> None:
    """Remove the state file if it still holds ``state`` (same token)."""
    path = path or state_path()
    with contextlib.suppress(StateFileError):
        current = read_state(path)
        if current is not None and current.token == state.token:
            path.unlink(missing_ok=True)


def carries_token(pid: int, token: str) -> bool:
    """Is ``pid`` alive (not a zombie) with ``token`` in its environment? (Where there is
    no ``/proc`` to read environments from: is it alive at all.)"""
    if not SCAN_SUPPORTED:
        return _alive(pid)
    return any(p.pid == pid for p in processes_with_token(token))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gcs_answers(address: str, timeout_s: float = PROBE_S) -> bool:
    """Does the GCS at ``host:port`` accept a TCP connection within ``timeout_s``?"""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def health(state: WarmState) -> Health:
    """Whether ``state`` still describes a working cluster (see the module doc)."""
    current = boot_id()
    if state.boot_id and current and state.boot_id != current:
        return Health("stale", "written before this machine last rebooted")
    if not carries_token(state.pid, state.token):
        return Health("stale", f"its keeper process (pid {state.pid}) is gone")
    if not gcs_answers(state.address):
        return Health(
            "unhealthy",
            f"its keeper (pid {state.pid}) runs but the GCS at {state.address} does not answer",
        )
    return Health("up", f"keeper pid {state.pid}, {state.summary()}")


def discard(state: WarmState, path: Path | None = None) -> list[OwnedProcess]:
    """Remove what ``state`` left (see the module doc); returns the processes that would not
    end (normally none)."""
    from .teardown import end_token_processes

    left: list[OwnedProcess] = []
    if not state.boot_id or state.boot_id == boot_id():
        left = end_token_processes(state.token)
    shutil.rmtree(state.temp_dir, ignore_errors=True)
    remove_state(state, path)
    return left


def discard_unreadable(path: Path | None = None) -> list[OwnedProcess]:
    """Remove a state file :func:`read_state` refuses (another version's, or damaged) and
    what it still names of a cluster: the processes carrying its ``token`` (same boot
    only) and its ``temp_dir``."""
    from .teardown import end_token_processes

    path = path or state_path()
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        raw = None
    left: list[OwnedProcess] = []
    if isinstance(raw, dict):
        token, folder = raw.get("token"), raw.get("temp_dir")
        same_boot = not raw.get("boot_id") or raw.get("boot_id") == boot_id()
        if isinstance(token, str) and token and same_boot:
            left = end_token_processes(token)
        if isinstance(folder, str) and folder:
            shutil.rmtree(folder, ignore_errors=True)
    path.unlink(missing_ok=True)
    return left
