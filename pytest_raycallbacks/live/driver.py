"""This process's Ray driver: importing Ray, the ``RAY_ADDRESS`` it must not follow,
connecting to the cluster, and checking an existing cluster before connecting to it.

Contract:

* :func:`import_ray` imports Ray or raises :class:`~.errors.ClusterStartError` saying how
  to install it.
* :func:`take_ray_address` removes ``RAY_ADDRESS`` from this process's environment for as
  long as the cluster runs, warning (:class:`~.errors.RayAddressIgnoredWarning`) when it
  named another cluster than the one asked for; :func:`restore_ray_address` puts it back.
* :func:`connect` runs ``ray.init`` with the cluster's namespace and runtime env, Ray's
  logging quiet, and returns the driver's job id.
* :func:`check_address` refuses Ray Client addresses and addresses that are not
  ``host:port``, and makes sure the GCS answers (bounded) before ``ray.init`` is tried.
* :func:`probe_physical` says whether every GPU node of a cluster has real devices, by a
  bounded probe task on each.
"""

from __future__ import annotations

import os
import socket
import uuid
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import execution
from .errors import ClusterStartError, RayAddressIgnoredWarning
from .remote import detect_gpus_on_node
from .wording import short_id

if TYPE_CHECKING:
    from .config import LiveClusterConfig
    from .environment import XdistWorker
    from .inventory import NodeInfo

#: The longest any probe of an existing cluster's GPUs may take, whatever the task bound.
PROBE_TIMEOUT_S = 60.0


def import_ray() -> Any:
    """The ``ray`` module; a :class:`~.errors.ClusterStartError` saying how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterStartError(
            "the live cluster needs Ray: pip install 'pytest-raycallbacks[ray]'"
        ) from exc
    return ray


def connected_address(ray: Any) -> str:
    """The GCS address the driver is connected to (``"?"`` when Ray cannot say)."""
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:
        return "?"


def default_namespace(xdist: XdistWorker | None) -> str:
    """A Ray namespace of our own: ``raycallbacks-<xdist worker or main>-<random>``."""
    return f"raycallbacks-{xdist.name if xdist else 'main'}-{uuid.uuid4().hex[:8]}"


def take_ray_address(wanted: str | None) -> tuple[str | None, str | None]:
    """Remove ``RAY_ADDRESS`` from the environment; return ``(saved, ignored)``: its value
    (for :func:`restore_ray_address`) and, when it differs from the ``wanted`` address, that
    value again (it is ignored, and a :class:`~.errors.RayAddressIgnoredWarning` says so)."""
    value = os.environ.pop("RAY_ADDRESS", None)
    if value is None or value == wanted:
        return value, None
    target = (
        f"the cluster at --raycallbacks-ray-address={wanted}" if wanted else "a cluster of its own"
    )
    warnings.warn(
        f"RAY_ADDRESS={value!r} is set in the environment but the live cluster uses "
        f"{target}; RAY_ADDRESS is ignored and unset while it runs (restored "
        f"afterwards). To test against that cluster pass --raycallbacks-ray-address={value}",
        RayAddressIgnoredWarning,
        stacklevel=3,  # the caller of LiveCluster.start()
    )
    return value, value


def restore_ray_address(saved: str | None) -> None:
    """Put back the ``RAY_ADDRESS`` :func:`take_ray_address` removed (if there was one)."""
    if saved is not None:
        os.environ["RAY_ADDRESS"] = saved


def connect(ray: Any, *, address: str, namespace: str, config: LiveClusterConfig) -> str:
    """Connect the driver to the cluster at ``address``; return the driver's job id.

    The job's runtime env is the configured one, plus, where vLLM or torch is missing here,
    the kit's ``worker_process_setup_hook`` (:func:`reference_runner.ray_llm.install_stand_ins`:
    every worker of the job, and of its tasks' own runtime envs, stands in for what Ray's LLM
    modules need of them, as this process does), unless the runtime env names a hook of its own.
    """
    ray.init(
        address=address,
        namespace=namespace,
        runtime_env=job_runtime_env(config.runtime_env),
        logging_level="ERROR",
        log_to_driver=config.log_to_driver,
        configure_logging=True,
    )
    return str(ray.get_runtime_context().get_job_id())


def job_runtime_env(configured: Any) -> dict[str, Any] | None:
    """The driver job's runtime env (see :func:`connect`)."""
    from reference_runner.ray_llm import WORKER_SETUP_HOOK, torch_installed, vllm_installed

    runtime_env = dict(configured) if configured else {}
    if not (vllm_installed() and torch_installed()):
        runtime_env.setdefault("worker_process_setup_hook", WORKER_SETUP_HOOK)
    return runtime_env or None


def check_address(address: str, *, timeout_s: float) -> None:
    """Raise :class:`~.errors.ClusterStartError` unless ``address`` is a GCS address
    (``host:port``, or Ray's ``auto``/``local``) that answers within ``timeout_s``."""
    if address.startswith("ray://"):
        raise ClusterStartError(
            f"--raycallbacks-ray-address={address!r} is a Ray Client address; the live "
            "cluster needs a driver connected to the cluster's GCS (host:port). Run pytest "
            "on a node of the cluster (or as a Ray job) with the GCS address, e.g. "
            "--raycallbacks-ray-address=10.0.0.1:6379"
        )
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


def probe_physical(cluster: execution.ClusterContext, nodes: Sequence[NodeInfo]) -> bool:
    """True when ``nodes`` has GPU nodes and a probe task on each finds real devices."""
    found = []
    for node in (n for n in nodes if n.gpus):
        detection = execution.run_remote(
            cluster,
            detect_gpus_on_node,
            what=f"a probe of node {short_id(node.node_id)}'s GPU devices",
            timeout_s=min(cluster.task_timeout_s, PROBE_TIMEOUT_S),
            **execution.node_affinity(node.node_id),
        )
        found.append(detection.count > 0)
    return bool(found) and all(found)
