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
* Hygiene (local modes): the nodes are started (:mod:`.local_start`) by a child process of
  ours, the keeper (:mod:`.keeper`), so a hung start can be ended and pytest's process gets
  none of Ray's signal or exit handlers. No dashboard; Ray picks free ports; Ray's files
  live in a short folder of our own, removed by :meth:`close`. Every process started
  carries the cluster's token; :meth:`close` ends those processes only (the keeper stops
  its nodes, then any straggler carrying the token is ended: :mod:`.teardown`) and never
  runs ``ray stop``.
* Warm (``warm=`` a :class:`~.warm_state.WarmState`): connect to the warm cluster
  ``raycallbacks cluster up`` keeps between runs, as in address mode (:attr:`warm` says so),
  with a folder of this run's own there; what earlier runs left is removed on start, what
  this run created on :meth:`close` (:mod:`.warm_runs`). Its nodes cannot be added or removed.
* ``RAY_ADDRESS`` is removed from the environment while the cluster runs (with a
  :class:`~.errors.RayAddressIgnoredWarning` when it was set and is not the address we were
  asked to use) and restored by :meth:`close` (:mod:`.driver`).
* Bounds: cluster start, node joins and removals, tasks and placement groups each wait at
  most their ``config`` bound and raise :class:`~.errors.WaitTimeoutError` naming what was
  awaited. A failed start leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_raycallbacks import interrupts

from . import driver, execution, inventory, local_start, teardown
from .config import LiveClusterConfig, Mode, NodeSpec, config_from_env
from .environment import XdistWorker, xdist_worker
from .errors import DriverBusyError, LeakError, ModeError, NoPhysicalGPUError
from .gpus import GpuDetection, detect_physical_gpus, share_for_worker
from .inventory import Leaks, NodeInfo, Snapshot
from .local_start import MAX_TEMP_DIR_LEN
from .processes import OwnedProcess, processes_with_token
from .remote import GpuView, RemoteInitResult
from .supervisor import KeeperProcess
from .wording import short_id

if TYPE_CHECKING:
    from .warm_runs import RunSpace
    from .warm_state import WarmState

__all__ = ["MAX_TEMP_DIR_LEN", "LiveCluster", "active_cluster"]

_active: weakref.ReferenceType[LiveCluster] | None = None


def active_cluster() -> LiveCluster | None:
    """The ``LiveCluster`` started in this process and not yet closed, if any."""
    cluster = _active() if _active is not None else None
    return cluster if cluster is not None and cluster.started and not cluster.closed else None


class LiveCluster:
    """A live Ray cluster with GPU nodes; see the module docstring for the contract."""

    def __init__(
        self,
        config: LiveClusterConfig | None = None,
        *,
        warm: WarmState | None = None,
        **overrides: Any,
    ) -> None:
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
        self.warm = warm
        self._run_space: RunSpace | None = None

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
        local = self.warm is None and wanted in ("physical", "auto")
        detection = self._detect_gpus() if local else None
        self._ray = driver.import_ray()
        self._refuse_busy_driver()
        self.namespace = self.namespace or driver.default_namespace(self.xdist)
        self._saved_ray_address, self.ignored_ray_address = driver.take_ray_address(
            self.config.address
        )
        self._starting = True
        try:
            if self.warm is not None:
                self._start_warm(self.warm)
            elif wanted == "address":
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
                teardown.leave_address(self._ray, self.cleanup, self.address)
            elif self._keeper is not None or self.token:
                self._teardown_local()
        finally:
            self.closed = True
            self._restore_ray_address()
            if self._run_space is not None:
                self._run_space.close()

    # ------------------------------------------------------------------ starting

    def _detect_gpus(self) -> GpuDetection:
        detection = share_for_worker(detect_physical_gpus(), self.xdist)
        self.gpu_detection = detection
        if self.config.gpus == "physical":
            local_start.require_gpus(detection, self.xdist)
        return detection

    def _refuse_busy_driver(self) -> None:
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
                f"{driver.connected_address(self._ray)!r}), and one process's driver connects "
                "to one cluster only: let the live cluster start before anything calls "
                "ray.init(), or call ray.shutdown() first"
            )

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
        assert self.mode is not None
        self.token = uuid.uuid4().hex
        bound = self.config.start_timeout_s
        deadline = time.monotonic() + bound
        try:  # from the folder on: an interrupt at any point leaves nothing behind
            self.temp_dir = local_start.make_temp_dir(self.config.tmp_root, self.xdist)
            env = local_start.keeper_environment(
                token=self.token, temp_dir=self.temp_dir, simulate=simulate, devices=devices
            )
            log = os.path.join(self.temp_dir, "keeper.log")
            self._keeper = KeeperProcess(env, log, folder=self.temp_dir)
            started = local_start.start_nodes(
                self._keeper,
                self.config,
                nodes,
                mode=self.mode,
                temp_dir=self.temp_dir,
                timeout_s=bound,
            )
            self.address = started.address
            self._node_ids = list(started.node_ids)
            self._head_id = started.head_id
            self._connect()
            inventory.wait_nodes_alive(
                self._ray,
                self._node_ids,
                where=self.address,
                timeout_s=max(1.0, deadline - time.monotonic()),
            )
        except BaseException as exc:
            interrupted = not isinstance(exc, Exception)
            logs = "" if interrupted else local_start.log_tail(self._keeper, self.temp_dir)
            self._teardown_local(orderly=False)  # a failed keeper may be busy: abort it
            failure = local_start.start_failure(
                exc, f"the {self.mode} Ray cluster ({len(nodes)} node(s))", logs
            )
            if failure is exc:
                raise
            raise failure from exc
        self._initial_node_ids = tuple(self._node_ids)

    def _start_address(self) -> None:
        self.mode = "address"
        address = str(self.config.address)
        driver.check_address(address, timeout_s=min(10.0, self.config.start_timeout_s))
        self.address = address
        self._connect()
        self.physical = driver.probe_physical(self, self.nodes())
        if self.config.gpus == "physical" and not self.physical:
            nodes = ", ".join(f"{short_id(n.node_id)}: {n.gpus} GPU" for n in self.nodes())
            teardown.leave_address(self._ray, self.cleanup, self.address)
            raise NoPhysicalGPUError(
                "physical GPUs were required (--raycallbacks-gpus=physical) but the cluster at "
                f"{address} has none that are real devices ({nodes or 'no nodes'}); point "
                "--raycallbacks-ray-address at a cluster with GPU nodes"
            )

    def _start_warm(self, warm: WarmState) -> None:
        from .warm_runs import RunSpace, remove_leftovers

        self.mode = "address"
        self.address = warm.address
        driver.check_address(warm.address, timeout_s=min(10.0, self.config.start_timeout_s))
        space = RunSpace(warm, self.namespace)
        try:
            self._connect()
        except BaseException:
            space.close()
            raise
        self._run_space, self.temp_dir = space, str(space.folder)
        try:
            remove_leftovers(self._ray, warm, timeout_s=self.config.node_timeout_s)
        except Exception as exc:  # a leftover of another run must not fail this one
            warnings.warn(
                f"could not remove what earlier runs left on the warm cluster: {exc}",
                RuntimeWarning,
                stacklevel=3,  # the caller of LiveCluster.start()
            )

    def _connect(self) -> None:
        job_id = driver.connect(
            self._ray, address=self.address, namespace=self.namespace, config=self.config
        )
        if job_id not in self._job_ids:
            self._job_ids.append(job_id)

    # ------------------------------------------------------------------ stopping

    def _teardown_local(self, *, orderly: bool = True) -> None:
        """Disconnect, stop the nodes (``orderly`` and not interrupted: ask the keeper),
        end every process of the cluster, remove our folder (:func:`.teardown.stop_local`)."""
        keeper, self._keeper = self._keeper, None
        self._node_ids = []
        self.leftover_processes = teardown.stop_local(
            self._ray,
            keeper,
            self.token,
            self.temp_dir,
            orderly=orderly and not interrupts.interrupted(),
        )

    def _restore_ray_address(self) -> None:
        driver.restore_ray_address(self._saved_ray_address)
        self._saved_ray_address = None

    # ------------------------------------------------------------------ the handle

    @property
    def is_local(self) -> bool:
        """True when the cluster runs on this machine for the kit: this process started it
        (simulate or physical), or it is the warm cluster."""
        return self.mode in ("simulate", "physical") or self.warm is not None

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
            "warm": self.warm.summary() if self.warm is not None else None,
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
            args=local_start.node_args(self.config, spec),
        )
        node_id = str(answer["node_id"])
        self._node_ids.append(node_id)
        inventory.wait_nodes_alive(self._ray, [node_id], where=self.address, timeout_s=bound)
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
            f"node {short_id(node_id)}'s processes to exit",
            bound,
            op="remove_node",
            node_id=node_id,
            graceful=graceful,
        )
        self._node_ids.remove(node_id)
        inventory.wait_node_gone(self.ensure_connected(), node_id, timeout_s=bound)

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
        if self.warm is not None:
            raise ModeError(
                f"{what} cannot change the warm cluster: every run shares it. Run with "
                "RAYCALLBACKS_WARM_CLUSTER=off for a cluster of this run's own"
            )
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

    def run_ray_node_initialization(self, llm_config: Any, **options: Any) -> Any:
        """Ray's own node initialization for ``llm_config`` (Ray's ``LLMConfig``, or a
        mapping of its fields with a ``callback_config``) on this cluster: Serve's placement
        group, a replica task in it, Ray's ``get_or_create_callback``, ``run_callback`` and
        ``initialize_node`` with its download tasks. Returns the
        :class:`reference_runner.ray_replica.ReplicaStart` (the callback's final ``ctx``,
        what Ray left for the engine, the files on each node of the group); the group is
        removed. Options: those of
        :func:`reference_runner.ray_replica.run_ray_node_initialization`."""
        from reference_runner.ray_replica import run_ray_node_initialization

        self.ensure_connected()
        return run_ray_node_initialization(llm_config, **options)

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
