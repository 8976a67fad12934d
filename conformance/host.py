"""Old home of :mod:`conformance.cluster_api`, kept so that downstream imports still work."""

from __future__ import annotations

from .cluster_api import DOWNLOAD_FAILS, FAULTS, PLACEMENT_INFEASIBLE, WorkerRun
from .cluster_api import Cluster as Host
from .cluster_api import ClusterScope as HostScope
from .cluster_api import WorkerCluster as LiveHost

__all__ = [
    "DOWNLOAD_FAILS",
    "FAULTS",
    "PLACEMENT_INFEASIBLE",
    "Host",
    "HostScope",
    "LiveHost",
    "WorkerRun",
]
