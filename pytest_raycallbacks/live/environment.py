"""The environment the cluster's processes start in, and who this process is.

Contract:

* :func:`node_environment` is the exact environment change applied while a local cluster
  starts a node: ``RAY_ADDRESS`` removed (an inherited address must never redirect the
  cluster), ``RAY_TMPDIR`` set to the cluster's own folder (Ray's "current cluster" file
  goes there, not to ``/tmp/ray``), usage stats off, the ownership token set (so teardown
  and tests can tell our processes from everyone else's), ``PYTHONPATH`` extended with the
  driver's importable ``sys.path`` entries (so workers import what the driver imports), and
  ``CUDA_VISIBLE_DEVICES`` removed in simulate mode (Ray refuses to start more GPUs than it
  lists) or set to the node's devices in physical mode.
* :func:`apply_changes` applies such a change to a copy of an environment.
* :func:`xdist_worker` says which xdist worker this process is (``None`` outside xdist).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

TOKEN_ENV: Final = "RAYCALLBACKS_CLUSTER_TOKEN"
REMOVE: Final = None


@dataclass(frozen=True)
class XdistWorker:
    """``gw<index>`` of ``count`` workers."""

    name: str
    index: int
    count: int


def xdist_worker(env: Mapping[str, str] | None = None) -> XdistWorker | None:
    """This process's xdist worker, from ``PYTEST_XDIST_WORKER(_COUNT)``, else ``None``."""
    env = os.environ if env is None else env
    name = env.get("PYTEST_XDIST_WORKER")
    if not name:
        return None
    digits = "".join(ch for ch in name if ch.isdigit())
    index = int(digits) if digits else 0
    try:
        count = int(env.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        count = 1
    return XdistWorker(name, index, max(count, index + 1))


def shippable_sys_path(path: Sequence[str] | None = None) -> list[str]:
    """The driver's ``sys.path`` entries a worker on this machine needs to import what the
    driver imports: existing folders and archives outside the interpreter's own library
    folders and outside any ``site-packages``/``dist-packages`` (workers have those anyway,
    and putting them first could change which version of a package wins), in order,
    without duplicates."""
    path = sys.path if path is None else path
    own = {
        os.path.realpath(p)
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    seen: set[str] = set()
    entries = []
    for entry in path:
        absolute = os.path.abspath(entry or os.getcwd())
        real = os.path.realpath(absolute)
        if real in seen or not os.path.exists(absolute):
            continue
        if any(real == o or real.startswith(o + os.sep) for o in own):
            continue
        if os.path.basename(real) in ("site-packages", "dist-packages"):
            continue  # installed packages: workers have them, in their own order
        seen.add(real)
        entries.append(absolute)
    return entries


def node_environment(
    *,
    token: str,
    ray_tmpdir: str,
    simulate: bool,
    cuda_visible_devices: Sequence[str] | None = None,
    sys_path: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """The changes (``None`` = remove) a node's processes start with; see the module doc."""
    env = os.environ if env is None else env
    changes: dict[str, str | None] = {
        "RAY_ADDRESS": REMOVE,
        "RAY_TMPDIR": ray_tmpdir,
        "RAY_USAGE_STATS_ENABLED": "0",
        TOKEN_ENV: token,
    }
    if simulate:
        changes["CUDA_VISIBLE_DEVICES"] = REMOVE
        changes["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] = REMOVE
    elif cuda_visible_devices is not None:
        changes["CUDA_VISIBLE_DEVICES"] = ",".join(cuda_visible_devices)
    entries = shippable_sys_path(sys_path)
    previous = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    merged = entries + [p for p in previous if p not in entries]
    if merged:
        changes["PYTHONPATH"] = os.pathsep.join(merged)
    return changes


def apply_changes(env: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """A copy of ``env`` with ``changes`` applied (``None`` removes the variable)."""
    merged = {**env, **changes}
    return {key: value for key, value in merged.items() if value is not None}
