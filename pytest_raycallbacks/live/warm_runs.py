"""A run's use of the warm cluster: whether it may, its own space there, and cleaning up.

Contract:

* :func:`choose` decides whether a pytest run uses the warm cluster: only a certification
  run (the kit), with no ``--raycallbacks-ray-address``, ``--raycallbacks-gpus`` not
  ``physical``, outside xdist (each worker keeps a cluster of its own), not turned off
  (``RAYCALLBACKS_WARM_CLUSTER=off``), and when the state (:mod:`.warm_state`) says ``up``,
  the cluster runs this Python and Ray version, and ``$RAYCALLBACKS_SIMULATE_NODES``, if
  set, asks for its topology. The :class:`WarmChoice` says why, for the header line.
* A run on the warm cluster has a namespace of its own (as every run) and a folder of its
  own, ``<cluster folder>/runs/<namespace>`` (:class:`RunSpace`), locked while the run
  lives: the lock goes with the process, so a run that was killed leaves an unlocked folder.
* :func:`remove_leftovers`, run when a run connects, removes what runs that are over left:
  placement groups and actors of dead Ray jobs (only detached ones outlive their job; an
  unnamed actor, which Ray gives no handle to, by ending its worker process, token
  checked) and unlocked run folders. Everything on the warm cluster belongs to the kit's runs, so
  anything of a dead job is a leftover; live jobs (other runs now) are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from .config import TOPOLOGY_ENV, parse_topology
from .warm_state import StateFileError, WarmState, discard, health, read_state, state_path

if TYPE_CHECKING:
    from .inventory import ActorRecord

WARM_ENV: Final = "RAYCALLBACKS_WARM_CLUSTER"
_OFF: Final = ("0", "off", "no", "false")
RUNS_DIR: Final = "runs"
LOCK_NAME: Final = ".lock"


@dataclass(frozen=True)
class WarmChoice:
    """The warm cluster a run uses (``state``; ``None``: a cluster of its own) and why."""

    state: WarmState | None
    reason: str

    def header(self) -> str | None:
        """What the header line says of it (``None``: nothing worth saying)."""
        if self.state is not None:
            return f"live: the warm cluster, {self.state.summary()}"
        return f"live: a cluster of its own ({self.reason})" if self.reason else None


def choose(
    *,
    certifying: bool,
    gpus: str | None,
    address: str | None,
    xdist: bool,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> WarmChoice:
    """Whether this run uses the warm cluster (see the module doc). ``reason`` is empty
    when there is nothing to say (no warm cluster recorded)."""
    env = os.environ if env is None else env
    if not certifying:
        return WarmChoice(
            None,
            "the warm cluster is not used: only certification runs "
            "(--raycallbacks-conformance) use it",
        )
    path = path or state_path(env)
    try:
        state = read_state(path)
    except StateFileError as exc:
        return WarmChoice(None, str(exc))
    if state is None:
        return WarmChoice(None, "")
    verdict = health(state)
    if verdict.status == "stale":
        with contextlib.suppress(OSError):
            discard(state, path)
        return WarmChoice(None, f"the recorded warm cluster was stale ({verdict.reason})")
    refusal = _refusal(gpus, address, xdist, env, state)
    if refusal is not None:
        return WarmChoice(None, f"the warm cluster is not used: {refusal}")
    if not verdict.up:
        return WarmChoice(None, f"the warm cluster is {verdict.status}: {verdict.reason}")
    return WarmChoice(state, verdict.reason)


def _refusal(
    gpus: str | None,
    address: str | None,
    xdist: bool,
    env: Mapping[str, str],
    state: WarmState,
) -> str | None:
    if env.get(WARM_ENV, "").strip().lower() in _OFF:
        return f"{WARM_ENV}={env[WARM_ENV]}"
    if address:
        return f"--raycallbacks-ray-address={address} names another cluster"
    if gpus == "physical":
        return "--raycallbacks-gpus=physical asks for real GPUs; its GPUs are simulated"
    if xdist:
        return "under xdist each worker starts a cluster of its own"
    if os.path.realpath(state.prefix) != os.path.realpath(sys.prefix):
        return f"it runs the Python environment {state.prefix}, this run {sys.prefix}"
    version = _installed_ray_version()
    if version and version != state.ray_version:
        return f"it runs Ray {state.ray_version}, this run Ray {version}"
    wanted = env.get(TOPOLOGY_ENV)
    if wanted:
        try:
            same = parse_topology(wanted) == parse_topology(state.topology)
        except ValueError:
            same = False
        if not same:
            return f"{TOPOLOGY_ENV}={wanted} differs from its topology {state.topology}"
    return None


def _installed_ray_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ray")
    except PackageNotFoundError:
        return ""


class RunSpace:
    """This run's folder on the warm cluster, locked while the run lives."""

    def __init__(self, state: WarmState, namespace: str) -> None:
        self.folder = Path(state.temp_dir) / RUNS_DIR / namespace
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock: IO[str] | None = open(self.folder / LOCK_NAME, "w")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        """Remove the folder and let go of the lock (idempotent)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        lock.close()


def _is_locked(folder: Path) -> bool:
    try:
        with open(folder / LOCK_NAME, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def active_runs(state: WarmState) -> list[str]:
    """Namespaces of the runs using the warm cluster now."""
    runs = Path(state.temp_dir) / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and _is_locked(p))


def sweep_runs(state: WarmState) -> list[str]:
    """Remove the folders of runs that are over (unlocked); return their namespaces."""
    runs = Path(state.temp_dir) / RUNS_DIR
    if not runs.is_dir():
        return []
    removed = []
    for folder in runs.iterdir():
        if folder.is_dir() and not _is_locked(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return sorted(removed)


def dead_job_ids(ray: Any) -> list[str]:
    """The ids (hex) of the cluster's Ray jobs that are over."""
    from ray._private import state  # the GCS job table; works without the dashboard

    jobs = state.jobs()  # type: ignore[no-untyped-call]
    return [str(job["JobID"]) for job in jobs if job.get("IsDead")]


def remove_leftovers(ray: Any, state: WarmState, *, timeout_s: float) -> str:
    """Remove what runs that are over left on the warm cluster (see the module doc);
    return what was removed, in words (empty when nothing)."""
    from .inventory import Leaks, find_leaks, our_actors, release
    from .waits import wait_until

    folders = sweep_runs(state)
    jobs = dead_job_ids(ray)
    leaks = find_leaks(ray, jobs, None) if jobs else Leaks()
    if leaks.placement_groups:
        release(ray, Leaks(placement_groups=leaks.placement_groups), jobs, timeout_s=timeout_s)
    if leaks.actors:
        _end_actors(ray, leaks.actors, state.token)
        ids = {a.id for a in leaks.actors}
        wait_until(
            lambda: not ids & {a.id for a in our_actors(ray, jobs)},
            what=f"{len(ids)} actor(s) of runs that are over to end",
            timeout_s=timeout_s,
        )
    parts = [leaks.describe()] if leaks else []
    if folders:
        parts.append(f"{len(folders)} run folder(s): {', '.join(folders)}")
    return "\n".join(parts)


def _end_actors(ray: Any, actors: Sequence[ActorRecord], token: str) -> None:
    """Kill actors whose job is over. A named one through a handle found by its name (in
    whichever namespace it lives); Ray gives no handle to an unnamed one, so its worker
    process is ended, after checking it carries the warm cluster's token."""
    from .processes import terminate

    namespaces: dict[str, list[str]] = {}
    for entry in ray.util.list_named_actors(all_namespaces=True):
        namespaces.setdefault(str(entry["name"]), []).append(str(entry["namespace"]))
    for actor in actors:
        named = any(_kill_named(ray, actor, ns) for ns in namespaces.get(actor.name, []))
        if not named and actor.pid:
            terminate(token, [actor.pid])


def _kill_named(ray: Any, actor: ActorRecord, namespace: str) -> bool:
    try:
        handle = ray.get_actor(actor.name, namespace=namespace)
        if handle._ray_actor_id.hex() != actor.id:
            return False
        ray.kill(handle, no_restart=True)
    except Exception:
        return False
    return True
