"""Starting a local cluster's nodes (simulate and physical modes) through the keeper.

Contract:

* :func:`make_temp_dir` makes the cluster's own folder under ``config.tmp_root``, short
  enough for Ray's unix sockets (:data:`MAX_TEMP_DIR_LEN`), or raises
  :class:`~.errors.ClusterStartError` saying how to get a shorter one.
* :func:`keeper_environment` is the environment the keeper, and so every node and worker,
  starts in (:func:`~.environment.node_environment` applied to ours).
* :func:`head_node_args` and :func:`node_args` are the ``Cluster.add_node`` arguments for a
  :class:`~.config.NodeSpec`: the head without dashboard, on free ports, in our folder.
* :func:`start_nodes` asks the keeper to start the head and the workers, bounded, and says
  where they are.
* :func:`require_gpus` refuses physical mode without GPUs
  (:class:`~.errors.NoPhysicalGPUError`, before anything starts).
* :func:`start_failure` is what a failed start raises, with the end of the keeper's and
  Ray's logs (:func:`log_tail`) attached.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .config import SIMULATED_HEALTH_CHECKS, LiveClusterConfig, Mode, NodeSpec
from .environment import XdistWorker, apply_changes, node_environment
from .errors import ClusterStartError, LiveClusterError, NoPhysicalGPUError, WaitTimeoutError
from .gpus import GpuDetection
from .wording import error_text

if TYPE_CHECKING:
    from .supervisor import KeeperProcess

#: Ray's unix socket paths must stay under 108 bytes; its session folder adds ~70.
MAX_TEMP_DIR_LEN: Final = 36
#: Ray's logs whose ends a failed start shows.
_START_LOGS: Final = ("gcs_server", "raylet", "monitor")


@dataclass(frozen=True)
class StartedNodes:
    """What the keeper started: the GCS address, every node id (head first), the head's."""

    address: str
    node_ids: tuple[str, ...]
    head_id: str


def make_temp_dir(root: str, xdist: XdistWorker | None) -> str:
    """A fresh folder ``<root>/rcb<xdist index>-XXXX`` for the cluster (Ray's sessions,
    the keeper's log, downloaded models), with the ``ray`` folder Ray's "current cluster"
    file goes to."""
    prefix = f"rcb{xdist.index if xdist else ''}-"
    path = tempfile.mkdtemp(prefix=prefix, dir=root)
    if len(path) > MAX_TEMP_DIR_LEN:
        shutil.rmtree(path, ignore_errors=True)
        raise ClusterStartError(
            f"the live cluster's folder {path!r} is too long for Ray's unix sockets (at most "
            f"{MAX_TEMP_DIR_LEN} characters): set RAYCALLBACKS_RAY_TMPDIR to a short folder "
            "such as /tmp"
        )
    Path(path, "ray").mkdir()
    return path


def keeper_environment(
    *, token: str, temp_dir: str, simulate: bool, devices: tuple[str, ...] | None
) -> dict[str, str]:
    """This process's environment with the node environment's changes applied."""
    changes = node_environment(
        token=token, ray_tmpdir=temp_dir, simulate=simulate, cuda_visible_devices=devices
    )
    return apply_changes(os.environ, changes)


def require_gpus(detection: GpuDetection, xdist: XdistWorker | None) -> None:
    """Raise :class:`~.errors.NoPhysicalGPUError` (what was tried, and what to do) when
    physical mode found no GPU for this process."""
    if detection.count:
        return
    hint = (
        f" With xdist, worker {xdist.name} of {xdist.count} got none of the "
        "GPUs: run with at most as many workers as GPUs."
        if xdist is not None
        else ""
    )
    raise NoPhysicalGPUError(
        "physical GPUs were required (--raycallbacks-gpus=physical) but none were "
        f"found on this machine: {detection.explain()}.{hint} Run on a machine with "
        "NVIDIA GPUs and drivers, or use --raycallbacks-gpus=simulate (logical GPUs) or "
        "auto (physical when present, else simulated)."
    )


def node_args(config: LiveClusterConfig, spec: NodeSpec) -> dict[str, Any]:
    """``Cluster.add_node`` arguments for a worker node of shape ``spec``."""
    args: dict[str, Any] = {
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        "object_store_memory": config.object_store_memory,
    }
    if spec.resources:
        args["resources"] = dict(spec.resources)
    return args


def head_node_args(
    config: LiveClusterConfig, spec: NodeSpec, *, mode: Mode, temp_dir: str
) -> dict[str, Any]:
    """``Cluster.add_node`` arguments for the head node: :func:`node_args`, no dashboard,
    free ports, Ray's files in ``temp_dir``, and the ``_system_config`` (in simulate mode
    :data:`~.config.SIMULATED_HEALTH_CHECKS` unless the config sets one)."""
    # Ray 2.60 always runs its API server (dashboard.py); without the dashboard it loads no
    # dashboard module and no frontend. dashboard_port=None makes it look for a free port
    # from 8265 on instead of insisting on 8265.
    args = node_args(config, spec)
    args.update(
        include_dashboard=False,
        dashboard_port=None,
        dashboard_agent_listen_port=0,
        temp_dir=temp_dir,
    )
    system_config = config.system_config
    if system_config is None and mode == "simulate":
        system_config = SIMULATED_HEALTH_CHECKS
    if system_config:
        args["_system_config"] = dict(system_config)
    return args


def start_nodes(
    keeper: KeeperProcess,
    config: LiveClusterConfig,
    nodes: Sequence[NodeSpec],
    *,
    mode: Mode,
    temp_dir: str,
    timeout_s: float,
) -> StartedNodes:
    """Have ``keeper`` start ``nodes`` (head first), waiting at most ``timeout_s``."""
    answer = keeper.request(
        f"the Ray head node and {len(nodes) - 1} more node(s) to start",
        timeout_s,
        op="start",
        head=head_node_args(config, nodes[0], mode=mode, temp_dir=temp_dir),
        workers=[node_args(config, spec) for spec in nodes[1:]],
        timeout_s=timeout_s,
        temp_dir=temp_dir,
    )
    return StartedNodes(
        address=str(answer["address"]),
        node_ids=tuple(str(n["node_id"]) for n in answer["nodes"]),
        head_id=next(str(n["node_id"]) for n in answer["nodes"] if n["head"]),
    )


def start_failure(exc: BaseException, what: str, logs: str) -> BaseException:
    """What a failed start of ``what`` raises. ``exc`` itself when it already says what went
    wrong: not an ``Exception`` (Ctrl-C), or a :class:`~.errors.ClusterStartError` /
    :class:`~.errors.WaitTimeoutError` (with ``logs`` as a note); else a ``ClusterStartError``
    naming ``what``, ``exc`` and the ``logs``."""
    if not isinstance(exc, Exception):
        return exc
    if isinstance(exc, LiveClusterError):
        if logs:
            exc.add_note(logs)
        if isinstance(exc, (ClusterStartError, WaitTimeoutError)):
            return exc
    return ClusterStartError(
        f"could not start {what}: {error_text(exc)}" + (f"\n{logs}" if logs else "")
    )


def log_tail(keeper: KeeperProcess | None, temp_dir: str | None, lines: int = 15) -> str:
    """The last ``lines`` of the keeper's log and of Ray's GCS, raylet and monitor logs in
    ``temp_dir`` (at most four logs); empty when there is nothing to show."""
    if not temp_dir:
        return ""
    parts = [keeper.log_tail(lines)] if keeper is not None else []
    for path in sorted(Path(temp_dir).glob("session_*/logs/*")):
        if path.suffix not in (".err", ".out", ".log") or path.stat().st_size == 0:
            continue
        if not any(name in path.name for name in _START_LOGS):
            continue
        text = path.read_text(errors="replace").splitlines()[-lines:]
        if any(text):
            parts.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(parts[:4])
