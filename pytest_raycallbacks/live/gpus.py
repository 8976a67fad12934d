"""Finding the physical GPUs of this machine, and sharing them between xdist workers.

Contract:

* :func:`detect_physical_gpus` counts NVIDIA devices with ``nvidia-smi -L`` (bounded),
  else ``/proc/driver/nvidia/gpus``; ``CUDA_VISIBLE_DEVICES`` then narrows them to the
  devices it lists (``""`` or ``"-1"`` hide them all). ``CUDA_VISIBLE_DEVICES`` alone never
  proves a GPU exists. The result says where the answer came from and what was tried, for
  error messages.
* :func:`partition_gpus` gives xdist worker ``k`` of ``n`` the devices ``k, k+n, ...``, so
  parallel workers never hand the same physical GPU to two clusters;
  :func:`share_for_worker` narrows a detection to that share and says so in its ``tried``.
* Nothing here imports Ray.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .wording import error_text

if TYPE_CHECKING:
    from .environment import XdistWorker

PROC_GPUS: Final = "/proc/driver/nvidia/gpus"
NVIDIA_SMI_TIMEOUT_S: Final = 15.0
_HIDE_ALL: Final = ("", "-1", "none", "nodevfiles")


@dataclass(frozen=True)
class GpuDetection:
    """The GPUs found: ``ids`` as CUDA understands them (indices or UUIDs)."""

    ids: tuple[str, ...]
    source: str  # "nvidia-smi", "/proc/driver/nvidia/gpus" or "none"
    tried: tuple[str, ...]  # what was looked at, and what it said

    @property
    def count(self) -> int:
        return len(self.ids)

    def explain(self) -> str:
        """One line: what was found, where, and what was tried."""
        found = f"{self.count} GPU(s) {list(self.ids)} via {self.source}" if self.ids else "none"
        return f"{found} ({'; '.join(self.tried)})"


Runner = Callable[[Sequence[str]], str]


def _run_nvidia_smi(argv: Sequence[str]) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True
    )
    return done.stdout


def detect_physical_gpus(
    env: Mapping[str, str] | None = None,
    *,
    run: Runner = _run_nvidia_smi,
    which: Callable[[str], str | None] = shutil.which,
    proc_gpus: str = PROC_GPUS,
) -> GpuDetection:
    """Detect this machine's NVIDIA GPUs (see the module docstring for the order)."""
    env = os.environ if env is None else env
    tried: list[str] = []
    devices: list[str] = []
    source = "none"
    smi = which("nvidia-smi")
    if smi is None:
        tried.append("nvidia-smi: not found on PATH")
    else:
        try:
            lines = [ln for ln in run([smi, "-L"]).splitlines() if ln.startswith("GPU ")]
        except subprocess.TimeoutExpired:
            tried.append(f"nvidia-smi -L: no answer within {NVIDIA_SMI_TIMEOUT_S:g} s")
        except (OSError, subprocess.CalledProcessError) as exc:
            tried.append(f"nvidia-smi -L failed: {error_text(exc, one_line=True)}")
        else:
            devices = [_device_of(ln, i) for i, ln in enumerate(lines)]
            tried.append(f"nvidia-smi -L: {len(lines)} GPU(s)")
            source = "nvidia-smi" if devices else source
    if not devices:
        path = Path(proc_gpus)
        if path.is_dir():
            found = sorted(p.name for p in path.iterdir())
            tried.append(f"{proc_gpus}: {len(found)} GPU(s)")
            if found:
                devices = [f"{i}|" for i in range(len(found))]
                source = proc_gpus
        else:
            tried.append(f"{proc_gpus}: does not exist")
    ids = [d.split("|", 1)[0] for d in devices]
    uuids = {d.split("|", 1)[1]: d.split("|", 1)[0] for d in devices if d.split("|", 1)[1]}
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        if visible.strip().lower() in _HIDE_ALL:
            tried.append(f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU")
            return GpuDetection((), "none", tuple(tried))
        listed = [v.strip() for v in visible.split(",") if v.strip()]
        kept = [v for v in listed if v in ids or v in uuids]
        tried.append(f"CUDA_VISIBLE_DEVICES={visible!r} keeps {kept}")
        ids = kept
    return GpuDetection(tuple(ids), source if ids else "none", tuple(tried))


def _device_of(line: str, index: int) -> str:
    """``"GPU 0: NVIDIA H100 (UUID: GPU-abc)"`` -> ``"0|GPU-abc"``."""
    uuid = ""
    if "(UUID:" in line:
        uuid = line.split("(UUID:", 1)[1].strip().rstrip(")").strip()
    return f"{index}|{uuid}"


def partition_gpus(ids: Sequence[str], worker_index: int, worker_count: int) -> tuple[str, ...]:
    """The devices xdist worker ``worker_index`` of ``worker_count`` may use."""
    if worker_count < 1 or not 0 <= worker_index < worker_count:
        raise ValueError(f"bad worker {worker_index} of {worker_count}")
    return tuple(ids[worker_index::worker_count])


def share_for_worker(detection: GpuDetection, worker: XdistWorker | None) -> GpuDetection:
    """``detection`` narrowed to xdist ``worker``'s share (:func:`partition_gpus`), with a
    line in ``tried`` saying which devices it got; unchanged outside xdist or without GPUs."""
    if worker is None or not detection.count:
        return detection
    ids = partition_gpus(detection.ids, worker.index, worker.count)
    shared = f"xdist worker {worker.name} of {worker.count} gets {list(ids)}"
    return GpuDetection(ids, detection.source, (*detection.tried, shared))
