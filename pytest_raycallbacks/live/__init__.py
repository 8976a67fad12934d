"""Live Ray clusters with GPU nodes: the ``gpu_ray_cluster`` fixture and its handle.

Importing this package does not import Ray; :class:`LiveCluster` imports it on ``start()``.

Modules, one job each:

* :mod:`.config`      what cluster to run (mode, simulated topology, bounds, env variables)
* :mod:`.gpus`        finding this machine's physical GPUs; sharing them between xdist workers
* :mod:`.environment` the environment the cluster's processes start in; xdist identity
* :mod:`.processes`   our processes, by ownership token; ending exactly those
* :mod:`.waits`       bounded waits whose errors name what was awaited
* :mod:`.wording`     how messages name nodes and exceptions
* :mod:`.supervisor`  driving the keeper child process; :mod:`.keeper` is that process
* :mod:`.local_start` starting a local cluster's nodes through the keeper
* :mod:`.driver`      this process's Ray driver: importing Ray, RAY_ADDRESS, connecting
* :mod:`.teardown`    stopping what we started; leaving an existing cluster as found
* :mod:`.inventory`   nodes, and the placement groups / actors we created (leak checks)
* :mod:`.remote`      code that runs on the workers (initialize_node actor, probes)
* :mod:`.execution`   running that code from the driver, bounded, with clear errors
* :mod:`.cluster`     :class:`LiveCluster`: the handle, its lifecycle, topology and leaks
* :mod:`.fixture`     the pytest fixture
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_raycallbacks._lazy import lazy_exports

if TYPE_CHECKING:
    from .cluster import LiveCluster, active_cluster
    from .config import DEFAULT_SIMULATED_NODES, LiveClusterConfig, NodeSpec, parse_topology
    from .errors import (
        ClusterImportError,
        ClusterStartError,
        DriverBusyError,
        LeakError,
        LiveClusterError,
        ModeError,
        NoPhysicalGPUError,
        NotShippableError,
        RayAddressIgnoredWarning,
        RemoteError,
        WaitTimeoutError,
    )
    from .execution import ShipReport
    from .gpus import GpuDetection, detect_physical_gpus
    from .inventory import Leaks, NodeInfo, Snapshot
    from .remote import GpuView, RemoteInitResult, Unshippable, WorkerPlace

# Names are imported on first use, so that importing the plugin (which imports
# .fixture, and so this package) stays cheap: no Ray, no pydantic.
_WHERE = {
    "LiveCluster": "cluster",
    "active_cluster": "cluster",
    "DEFAULT_SIMULATED_NODES": "config",
    "LiveClusterConfig": "config",
    "NodeSpec": "config",
    "parse_topology": "config",
    "ClusterImportError": "errors",
    "ClusterStartError": "errors",
    "DriverBusyError": "errors",
    "LeakError": "errors",
    "LiveClusterError": "errors",
    "ModeError": "errors",
    "NoPhysicalGPUError": "errors",
    "NotShippableError": "errors",
    "RayAddressIgnoredWarning": "errors",
    "RemoteError": "errors",
    "WaitTimeoutError": "errors",
    "ShipReport": "execution",
    "GpuDetection": "gpus",
    "detect_physical_gpus": "gpus",
    "Leaks": "inventory",
    "NodeInfo": "inventory",
    "Snapshot": "inventory",
    "GpuView": "remote",
    "RemoteInitResult": "remote",
    "Unshippable": "remote",
    "WorkerPlace": "remote",
}

__all__ = [
    "DEFAULT_SIMULATED_NODES",
    "ClusterImportError",
    "ClusterStartError",
    "DriverBusyError",
    "GpuDetection",
    "GpuView",
    "LeakError",
    "Leaks",
    "LiveCluster",
    "LiveClusterConfig",
    "LiveClusterError",
    "ModeError",
    "NoPhysicalGPUError",
    "NodeInfo",
    "NodeSpec",
    "NotShippableError",
    "RayAddressIgnoredWarning",
    "RemoteError",
    "RemoteInitResult",
    "ShipReport",
    "Snapshot",
    "Unshippable",
    "WaitTimeoutError",
    "WorkerPlace",
    "active_cluster",
    "detect_physical_gpus",
    "parse_topology",
]


__getattr__ = lazy_exports(__name__, _WHERE)
