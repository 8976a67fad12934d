"""``LiveCluster``: a live Ray cluster with GPU nodes, and the handle tests drive it by.

Usable with or without pytest::

    with LiveCluster(LiveClusterConfig(gpus="simulate")) as cluster:
        result = cluster.run_initialize_node(["my_pkg.callbacks:cb"])

Contract:

* Modes. ``simulate``: a multi-node ``ray.cluster_utils.Cluster`` on this machine whose
  nodes declare logical GPUs (``config.nodes``, head first). ``physical``: one node with the
  GPUs detected on this machine (shared out between xdist workers); none found raises
  :class:`~.errors.NoPhysicalGPUError` before anything starts. ``auto``: physical when
  present, else simulate. ``address``: connect to ``config.address``; nothing is started or
  stopped there, and only what our driver jobs created is cleaned up. :attr:`mode` and
  :attr:`physical` say which it became.
* One per process: a process's Ray driver connects to one cluster, so :meth:`start` refuses
  (:class:`~.errors.DriverBusyError`) when another ``LiveCluster`` is active or Ray is
  already connected elsewhere. :func:`active_cluster` returns the active one.
* Hygiene (local modes): the nodes are started by a child process of ours, the keeper
  (:mod:`.keeper`), so a hung start can be ended and pytest's process gets none of Ray's
  signal or exit handlers. No dashboard; Ray picks free ports; Ray's files live in a short
  folder of our own, removed by :meth:`close`. Every process started carries the cluster's
  token; :meth:`close` ends those processes only (the keeper stops its nodes, then any
  straggler carrying the token is ended) and never runs ``ray stop``.
* ``RAY_ADDRESS`` is removed from the environment while the cluster runs (with a
  :class:`~.errors.RayAddressIgnoredWarning` when it was set and is not the address we were
  asked to use) and restored by :meth:`close`.
* Bounds: cluster start, node joins and removals, tasks and placement groups each wait at
  most their ``config`` bound and raise :class:`~.errors.WaitTimeoutError` naming what was
  awaited. A failed start leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from . import execution, inventory
from .config import SIMULATED_HEALTH_CHECKS, LiveClusterConfig, Mode, NodeSpec, config_from_env
from .environment import XdistWorker, apply_changes, node_environment, xdist_worker
from .errors import (
    ClusterStartError,
    DriverBusyError,
    LeakError,
    LiveClusterError,
    ModeError,
    NoPhysicalGPUError,
    RayAddressIgnoredWarning,
    WaitTimeoutError,
)
from .gpus import GpuDetection, detect_physical_gpus, partition_gpus
from .inventory import Leaks, NodeInfo, Snapshot
from .processes import OwnedProcess, processes_with_token, terminate
from .remote import GpuView, RemoteInitResult, detect_gpus_on_node
from .supervisor import KeeperProcess
from .waits import wait_until

#: Ray's unix socket paths must stay under 108 bytes; its session folder adds ~70.
MAX_TEMP_DIR_LEN: Final = 36

_active: weakref.ReferenceType[LiveCluster] | None = None


def active_cluster() -> LiveCluster | None:
    """The ``LiveCluster`` started in this process and not yet closed, if any."""
    cluster = _active() if _active is not None else None
    return cluster if cluster is not None and cluster.started and not cluster.closed else None


class LiveCluster:
    """A live Ray cluster with GPU nodes; see the module docstring for the contract."""

    def __init__(self, config: LiveClusterConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else config_from_env()
        self.config = base.with_overrides(**overrides) if overrides else base
        self.mode: Mode | None = None
        self.physical = False
        self.address = ""
        self.namespace = self.config.namespace or ""
        self.temp_dir: str | None = None
        self.token = ""
        self.gpu_detection: GpuDetection | None = None
        self.xdist: XdistWorker | None = xdist_worker()
        self.ignored_ray_address: str | None = None
        self.startup_s = 0.0
        self.started = False
        self.closed = False
        self._starting = False
        self.leftover_processes: list[OwnedProcess] = []
        self._ray: Any = None
        self._keeper: KeeperProcess | None = None
        self._node_ids: list[str] = []
        self._head_id = ""
        self._initial_node_ids: tuple[str, ...] = ()
        self._job_ids: list[str] = []
        self._saved_ray_address: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LiveCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> LiveCluster:
        """Start (or connect to) the cluster and connect this process's driver to it."""
        global _active
        if self.started:
            return self
        begin = time.monotonic()
        wanted = self.config.wanted_mode
        detection = self._detect_gpus() if wanted in ("physical", "auto") else None
        self._ray = _import_ray()
        other = active_cluster()
        if other is not None:
            raise DriverBusyError(
                f"another LiveCluster ({other.mode} at {other.address}) is active in this "
                "process, and one process's Ray driver connects to one cluster only: use "
                "that one (in pytest, the session's gpu_ray_cluster fixture) or close it first"
            )
        if self._ray.is_initialized():
            raise DriverBusyError(
                "Ray is already initialized in this process (connected to "
                f"{_connected_address(self._ray)!r}), and one process's driver connects to "
                "one cluster only: let the live cluster start before anything calls "
                "ray.init(), or call ray.shutdown() first"
            )
        self.namespace = self.namespace or _default_namespace(self.xdist)
        self._take_ray_address()
        self._starting = True
        try:
            if wanted == "address":
                self._start_address()
            elif detection is not None and (wanted == "physical" or detection.count):
                self._start_physical(detection)
            else:
                self._start_simulated()
        except BaseException:
            self._restore_ray_address()
            raise
        finally:
            self._starting = False
        self.started = True
        self.startup_s = time.monotonic() - begin
        _active = weakref.ref(self)
        return self

    def close(self) -> None:
        """Disconnect and stop what we started (address mode: clean up what we created).

        Idempotent. Afterwards :attr:`leftover_processes` lists any process carrying our
        token that could not be ended (normally none).
        """
        if self.closed:
            return
        try:
            if self.mode == "address":
                self._close_address()
            elif self._keeper is not None or self.token:
                self._teardown_local()
        finally:
            self.closed = True
            self._restore_ray_address()

    # ------------------------------------------------------------------ starting

    def _detect_gpus(self) -> GpuDetection:
        detection = detect_physical_gpus()
        if self.xdist is not None and detection.count:
            ids = partition_gpus(detection.ids, self.xdist.index, self.xdist.count)
            detection = GpuDetection(
                ids,
                detection.source,
                (
                    *detection.tried,
                    f"xdist worker {self.xdist.name} of {self.xdist.count} gets {list(ids)}",
                ),
            )
        self.gpu_detection = detection
        if self.config.gpus == "physical" and not detection.count:
            hint = (
                f" With xdist, worker {self.xdist.name} of {self.xdist.count} got none of the "
                "GPUs: run with at most as many workers as GPUs."
                if self.xdist is not None
                else ""
            )
            raise NoPhysicalGPUError(
                "physical GPUs were required (--raycallbacks-gpus=physical) but none were "
                f"found on this machine: {detection.explain()}.{hint} Run on a machine with "
                "NVIDIA GPUs and drivers, or use --raycallbacks-gpus=simulate (logical GPUs) or "
                "auto (physical when present, else simulated)."
            )
        return detection

    def _start_simulated(self) -> None:
        self.mode = "simulate"
        self.physical = False
        self._start_local(self.config.nodes, simulate=True, devices=None)

    def _start_physical(self, detection: GpuDetection) -> None:
        assert detection.count, "physical mode without GPUs is refused by _detect_gpus"
        self.mode = "physical"
        self.physical = True
        head = NodeSpec(num_gpus=detection.count, num_cpus=os.cpu_count() or 1)
        self._start_local((head,), simulate=False, devices=detection.ids)

    def _start_local(
        self, nodes: tuple[NodeSpec, ...], *, simulate: bool, devices: tuple[str, ...] | None
    ) -> None:
        self.token = uuid.uuid4().hex
        self.temp_dir = _make_temp_dir(self.config.tmp_root, self.xdist)
        Path(self.temp_dir, "ray").mkdir()  # where Ray's "current cluster" file goes
        changes = node_environment(
            token=self.token,
            ray_tmpdir=self.temp_dir,
            simulate=simulate,
            cuda_visible_devices=devices,
        )
        env = apply_changes(os.environ, changes)
        bound = self.config.start_timeout_s
        deadline = time.monotonic() + bound
        what = f"the Ray head node and {len(nodes) - 1} more node(s) to start"
        try:
            self._keeper = KeeperProcess(env, os.path.join(self.temp_dir, "keeper.log"))
            answer = self._keeper.request(
                what,
                bound,
                op="start",
                head=self._node_args(nodes[0], head=True),
                workers=[self._node_args(spec, head=False) for spec in nodes[1:]],
                timeout_s=bound,
                temp_dir=self.temp_dir,
            )
            self.address = str(answer["address"])
            self._node_ids = [str(n["node_id"]) for n in answer["nodes"]]
            self._head_id = next(str(n["node_id"]) for n in answer["nodes"] if n["head"])
            self._connect()
            self._wait_nodes_alive(
                set(self._node_ids), max(1.0, deadline - time.monotonic()), "to join"
            )
        except BaseException as exc:
            logs = self._log_tail()
            self._teardown_local(orderly=False)  # a failed keeper may be busy: kill it
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like pass through untouched
            if isinstance(exc, LiveClusterError):
                if logs:
                    exc.add_note(logs)
                if isinstance(exc, (ClusterStartError, WaitTimeoutError)):
                    raise
            raise ClusterStartError(
                f"could not start the {self.mode} Ray cluster ({len(nodes)} node(s)): "
                f"{type(exc).__name__}: {exc}" + (f"\n{logs}" if logs else "")
            ) from exc
        self._initial_node_ids = tuple(self._node_ids)

    def _node_args(self, spec: NodeSpec, *, head: bool) -> dict[str, Any]:
        args: dict[str, Any] = {
            "num_cpus": spec.num_cpus,
            "num_gpus": spec.num_gpus,
            "object_store_memory": self.config.object_store_memory,
        }
        if spec.resources:
            args["resources"] = dict(spec.resources)
        if head:
            # Ray 2.60 always runs its API server (dashboard.py); without the dashboard it
            # loads no dashboard module and no frontend. dashboard_port=None makes it look
            # for a free port from 8265 on instead of insisting on 8265.
            args.update(
                include_dashboard=False,
                dashboard_port=None,
                dashboard_agent_listen_port=0,
                temp_dir=self.temp_dir,
            )
            system_config = self.config.system_config
            if system_config is None and self.mode == "simulate":
                system_config = SIMULATED_HEALTH_CHECKS
            if system_config:
                args["_system_config"] = dict(system_config)
        return args

    def _start_address(self) -> None:
        self.mode = "address"
        address = str(self.config.address)
        if address.startswith("ray://"):
            raise ClusterStartError(
                f"--raycallbacks-ray-address={address!r} is a Ray Client address; the live "
                "cluster needs a driver connected to the cluster's GCS (host:port). Run pytest "
                "on a node of the cluster (or as a Ray job) with the GCS address, e.g. "
                "--raycallbacks-ray-address=10.0.0.1:6379"
            )
        _check_reachable(address, timeout_s=min(10.0, self.config.start_timeout_s))
        self.address = address
        self._connect()
        self._probe_address_gpus()
        if self.config.gpus == "physical" and not self.physical:
            nodes = ", ".join(f"{n.node_id[:12]}: {n.gpus} GPU" for n in self.nodes())
            self._close_address()
            raise NoPhysicalGPUError(
                "physical GPUs were required (--raycallbacks-gpus=physical) but the cluster at "
                f"{address} has none that are real devices ({nodes or 'no nodes'}); point "
                "--raycallbacks-ray-address at a cluster with GPU nodes"
            )

    def _probe_address_gpus(self) -> None:
        gpu_nodes = [n for n in self.nodes() if n.gpus]
        found = []
        for node in gpu_nodes:
            detection = execution.run_remote(
                self,
                detect_gpus_on_node,
                what=f"a probe of node {node.node_id[:12]}'s GPU devices",
                timeout_s=min(self.config.task_timeout_s, 60.0),
                **execution._node_affinity(node.node_id),
            )
            found.append(detection.count > 0)
        self.physical = bool(found) and all(found)

    def _connect(self) -> None:
        ray = self._ray
        ray.init(
            address=self.address,
            namespace=self.namespace,
            runtime_env=dict(self.config.runtime_env) if self.config.runtime_env else None,
            logging_level="ERROR",
            log_to_driver=self.config.log_to_driver,
            configure_logging=True,
        )
        job_id = ray.get_runtime_context().get_job_id()
        if job_id not in self._job_ids:
            self._job_ids.append(job_id)

    def _wait_nodes_alive(self, node_ids: set[str], timeout_s: float, verb: str) -> None:
        def alive() -> bool:
            seen = {n.node_id for n in inventory.list_nodes(self._ray)}
            return node_ids <= seen

        wait_until(
            alive,
            what=f"node(s) {sorted(i[:12] for i in node_ids)} {verb} the cluster at {self.address}",
            timeout_s=timeout_s,
            detail=lambda: (
                "alive now: " + str([n.node_id[:12] for n in inventory.list_nodes(self._ray)])
            ),
        )

    # ------------------------------------------------------------------ stopping

    def _teardown_local(self, *, orderly: bool = True) -> None:
        """Disconnect, stop the nodes (``orderly``: ask the keeper; else kill it), end any
        process still carrying our token, remove our folder."""
        ray = self._ray
        if ray is not None and ray.is_initialized():
            with contextlib.suppress(Exception):
                ray.shutdown()
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            try:
                if orderly:
                    keeper.request("stop the cluster's nodes", 60.0, op="shutdown")
                    keeper.wait(10.0)
            except LiveClusterError:
                pass  # whatever is left carries our token and is ended below
            finally:
                keeper.kill()
                keeper.close()
        self._node_ids = []
        self.leftover_processes = self._kill_token_processes()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            if os.path.exists(self.temp_dir):
                warnings.warn(
                    f"could not remove the live cluster's folder {self.temp_dir}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _kill_token_processes(self) -> list[OwnedProcess]:
        if not self.token:
            return []
        for _ in range(3):
            found = processes_with_token(self.token)
            if not found:
                return []
            terminate(self.token, [p.pid for p in found])
        return processes_with_token(self.token)

    def _close_address(self) -> None:
        ray = self._ray
        if ray is None or not ray.is_initialized():
            return
        try:
            self.cleanup()
        except Exception as exc:
            warnings.warn(
                f"could not remove the placement groups / actors this session created on the "
                f"cluster at {self.address}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
        with contextlib.suppress(Exception):
            ray.shutdown()

    def _take_ray_address(self) -> None:
        value = os.environ.pop("RAY_ADDRESS", None)
        self._saved_ray_address = value
        if value is not None and value != self.config.address:
            self.ignored_ray_address = value
            target = (
                f"the cluster at --raycallbacks-ray-address={self.config.address}"
                if self.config.address
                else "a cluster of its own"
            )
            warnings.warn(
                f"RAY_ADDRESS={value!r} is set in the environment but the live cluster uses "
                f"{target}; RAY_ADDRESS is ignored and unset while it runs (restored "
                "afterwards). To test against that cluster pass "
                f"--raycallbacks-ray-address={value}",
                RayAddressIgnoredWarning,
                stacklevel=3,
            )

    def _restore_ray_address(self) -> None:
        if self._saved_ray_address is not None:
            os.environ["RAY_ADDRESS"] = self._saved_ray_address
            self._saved_ray_address = None

    def _log_tail(self, lines: int = 15) -> str:
        if not self.temp_dir:
            return ""
        parts = [self._keeper.log_tail(lines)] if self._keeper is not None else []
        for path in sorted(Path(self.temp_dir).glob("session_*/logs/*")):
            if path.suffix not in (".err", ".out", ".log") or path.stat().st_size == 0:
                continue
            if not any(k in path.name for k in ("gcs_server", "raylet", "monitor")):
                continue
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if any(text):
                parts.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts[:4])

    # ------------------------------------------------------------------ the handle

    @property
    def is_local(self) -> bool:
        """True when this process started the cluster (simulate or physical)."""
        return self.mode in ("simulate", "physical")

    @property
    def job_ids(self) -> tuple[str, ...]:
        """The Ray job ids our driver has had (one per connection)."""
        return tuple(self._job_ids)

    @property
    def model_cache_dir(self) -> str | None:
        """Where ``run_initialize_node`` downloads models by default (local modes: our folder,
        removed with it; address mode: the config's own default)."""
        return os.path.join(self.temp_dir, "models") if self.temp_dir and self.is_local else None

    @property
    def task_timeout_s(self) -> float:
        return self.config.task_timeout_s

    @property
    def placement_group_timeout_s(self) -> float:
        return self.config.placement_group_timeout_s

    @property
    def ray(self) -> Any:
        """The ``ray`` module, connected to this cluster."""
        return self.ensure_connected()

    def ensure_connected(self) -> Any:
        """Return ``ray``, reconnecting the driver if a test called ``ray.shutdown()``."""
        self._check_open()
        ray = self._ray
        if not ray.is_initialized():
            self._connect()
        return ray

    def _check_open(self) -> None:
        if self.closed or not (self.started or self._starting):
            state = "closed" if self.closed else "not started"
            raise ModeError(f"the live cluster is {state}; call start() first")

    def nodes(self, *, alive_only: bool = True) -> list[NodeInfo]:
        """The cluster's nodes (head first) with their total resources."""
        return inventory.list_nodes(self.ensure_connected(), alive_only=alive_only)

    def gpus_per_node(self) -> dict[str, int]:
        """GPU count of every alive node, by node id."""
        return {n.node_id: n.gpus for n in self.nodes()}

    @property
    def total_gpus(self) -> int:
        return sum(self.gpus_per_node().values())

    def owned_processes(self) -> list[OwnedProcess]:
        """The live processes this cluster started (empty in address mode)."""
        return processes_with_token(self.token) if self.token else []

    def describe(self) -> dict[str, Any]:
        """Plain data for reports and the certificate."""
        nodes = self.nodes() if self.started and not self.closed else []
        return {
            "mode": self.mode,
            "requested_gpus": self.config.gpus,
            "physical": self.physical,
            "address": self.address,
            "namespace": self.namespace,
            "gpu_detection": self.gpu_detection.explain() if self.gpu_detection else None,
            "xdist_worker": self.xdist.name if self.xdist else None,
            "startup_s": round(self.startup_s, 3),
            "ray_version": getattr(self._ray, "__version__", None),
            "nodes": [
                {"node_id": n.node_id, "is_head": n.is_head, "gpus": n.gpus, "cpus": n.cpus}
                for n in nodes
            ],
        }

    # ------------------------------------------------------------------ topology

    def add_node(
        self,
        *,
        num_gpus: int = 2,
        num_cpus: int | None = None,
        resources: Mapping[str, float] | None = None,
        timeout_s: float | None = None,
    ) -> NodeInfo:
        """Start one more simulated node and wait (bounded) until it has joined."""
        self._require_simulate("add_node")
        assert self._keeper is not None
        cpus = num_cpus if num_cpus is not None else max(1, num_gpus)
        spec = NodeSpec(num_gpus, cpus, dict(resources or {}))
        bound = timeout_s or self.config.node_timeout_s
        answer = self._keeper.request(
            f"a new node ({num_gpus} GPUs) to start",
            bound,
            op="add_node",
            args=self._node_args(spec, head=False),
        )
        node_id = str(answer["node_id"])
        self._node_ids.append(node_id)
        self._wait_nodes_alive({node_id}, bound, "to join")
        return next(n for n in self.nodes() if n.node_id == node_id)

    def remove_node(
        self, node_id: str, *, graceful: bool = False, timeout_s: float | None = None
    ) -> None:
        """Stop a simulated worker node and wait (bounded) until the cluster marks it dead.

        ``graceful=False`` (default) kills its processes: a node failure, noticed by the
        GCS's health checks (~4 s in simulate mode). ``graceful=True`` terminates them
        politely: the node leaves at once (a scale-down). The head cannot be removed.
        """
        self._require_simulate("remove_node")
        assert self._keeper is not None
        if node_id == self._head_id:
            raise ModeError("the head node cannot be removed: the driver is connected to it")
        if node_id not in self._node_ids:
            raise ModeError(
                f"no node {node_id!r} was started by this cluster; nodes: {self._node_ids}"
            )
        bound = timeout_s or self.config.node_timeout_s
        self._keeper.request(
            f"node {node_id[:12]}'s processes to exit",
            bound,
            op="remove_node",
            node_id=node_id,
            graceful=graceful,
        )
        self._node_ids.remove(node_id)
        ray = self.ensure_connected()
        wait_until(
            lambda: all(n.node_id != node_id for n in inventory.list_nodes(ray)),
            what=f"the cluster to mark node {node_id[:12]} dead",
            timeout_s=bound,
        )

    @contextlib.contextmanager
    def temporary_node(self, **node_args: Any) -> Iterator[NodeInfo]:
        """``add_node(**node_args)`` for the ``with`` block; removed afterwards."""
        info = self.add_node(**node_args)
        try:
            yield info
        finally:
            if info.node_id in self._node_ids:
                self.remove_node(info.node_id, graceful=True)

    def restore_topology(self) -> None:
        """Remove nodes added since start (a test that removed one of the initial nodes
        cannot get it back: its id is gone; add_node adds a fresh one instead)."""
        for node_id in list(self._node_ids):
            if node_id not in self._initial_node_ids:
                self.remove_node(node_id, graceful=True)

    def _require_simulate(self, what: str) -> None:
        self._check_open()
        if self.mode != "simulate":
            raise ModeError(
                f"{what} needs a simulated cluster (--raycallbacks-gpus=simulate); this one is "
                f"{self.mode}: its nodes are real machines the kit does not own"
            )

    # ------------------------------------------------------------------ leaks

    def snapshot(self) -> Snapshot:
        """Our live placement groups and actors now (compare with :meth:`leaks`)."""
        return inventory.take_snapshot(self.ensure_connected(), self._job_ids)

    def leaks(self, since: Snapshot | None = None) -> Leaks:
        """Placement groups and actors of ours alive now and not at ``since``."""
        return inventory.find_leaks(self.ensure_connected(), self._job_ids, since)

    def assert_no_leaks(self, since: Snapshot | None = None, *, cleanup: bool = True) -> None:
        """Raise :class:`LeakError` listing our leaks since ``since``; with ``cleanup`` they
        are removed first, so the next test starts clean either way."""
        leaks = self.leaks(since)
        if not leaks:
            return
        if cleanup:
            self.release(leaks)
        raise LeakError(
            "placement groups / actors created during the test are still alive"
            + (" (now removed)" if cleanup else "")
            + ":\n"
            + leaks.describe(),
            leaks,
        )

    @contextlib.contextmanager
    def leak_check(self, *, cleanup: bool = True) -> Iterator[Snapshot]:
        """``with cluster.leak_check(): ...`` raises :class:`LeakError` at the end of the
        block if it left placement groups or actors of ours alive. If the block raises,
        its leftovers are removed and its exception propagates."""
        before = self.snapshot()
        try:
            yield before
        except BaseException:
            with contextlib.suppress(Exception):  # the block failed: just tidy up
                self.release(self.leaks(before))
            raise
        self.assert_no_leaks(before, cleanup=cleanup)

    def release(self, leaks: Leaks, *, timeout_s: float | None = None) -> None:
        """Remove these placement groups and kill these actors (bounded wait)."""
        inventory.release(
            self.ensure_connected(),
            leaks,
            self._job_ids,
            timeout_s=timeout_s or self.config.node_timeout_s,
        )

    def cleanup(self) -> Leaks:
        """Remove every placement group and actor our driver jobs created; returns them."""
        leaks = self.leaks(None)
        if leaks:
            self.release(leaks)
        return leaks

    # ------------------------------------------------------------------ running code

    def run_initialize_node(self, config_or_specs: Any, **options: Any) -> RemoteInitResult:
        """Run ``initialize_node`` in an actor on the cluster, as a serving replica would.

        See :func:`.execution.run_initialize_node` for the options.
        """
        return execution.run_initialize_node(self, config_or_specs, **options)

    def release_result(self, result: RemoteInitResult) -> None:
        """Free the placement group and actor a ``keep_placement_group=True`` run kept."""
        execution.release_result(self, result)

    def check_shippable(self, obj: Any, **options: Any) -> execution.ShipReport:
        """Send ``obj`` to a worker and rebuild it there (:func:`.execution.check_shippable`)."""
        return execution.check_shippable(self, obj, **options)

    def run_remote(self, fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
        """Run ``fn(*args)`` as a bounded Ray task (:func:`.execution.run_remote`)."""
        return execution.run_remote(self, fn, *args, **options)

    def gpu_view(self, **options: Any) -> GpuView:
        """What a task holding GPUs sees of them (:func:`.execution.run_gpu_view`)."""
        return execution.run_gpu_view(self, **options)

    def wait_placement_group(self, group: Any, timeout_s: float | None = None) -> None:
        """Wait, bounded, until ``group`` is ready."""
        execution.wait_placement_group(self, group, timeout_s)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "started" if self.started else "new"
        return (
            f"<LiveCluster {self.mode or self.config.wanted_mode} {state} address={self.address!r}"
            f" physical={self.physical}>"
        )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterStartError(
            "the live cluster needs Ray: pip install 'pytest-raycallbacks[ray]'"
        ) from exc
    return ray


def _connected_address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:
        return "?"


def _default_namespace(xdist: XdistWorker | None) -> str:
    return f"raycallbacks-{xdist.name if xdist else 'main'}-{uuid.uuid4().hex[:8]}"


def _make_temp_dir(root: str, xdist: XdistWorker | None) -> str:
    prefix = f"rcb{xdist.index if xdist else ''}-"
    path = tempfile.mkdtemp(prefix=prefix, dir=root)
    if len(path) > MAX_TEMP_DIR_LEN:
        shutil.rmtree(path, ignore_errors=True)
        raise ClusterStartError(
            f"the live cluster's folder {path!r} is too long for Ray's unix sockets (at most "
            f"{MAX_TEMP_DIR_LEN} characters): set RAYCALLBACKS_RAY_TMPDIR to a short folder "
            "such as /tmp"
        )
    return path


def _check_reachable(address: str, *, timeout_s: float) -> None:
    if address in ("auto", "local"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterStartError(
            f"--raycallbacks-ray-address={address!r} is not host:port (the cluster's GCS "
            "address, e.g. 10.0.0.1:6379)"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterStartError(
            f"cannot reach the Ray cluster at {address} within {timeout_s:g} s ({exc}); check "
            "--raycallbacks-ray-address and that the cluster is up"
        ) from exc
