"""conformance: the check catalogue of pytest-raycallbacks (docs/design.md §The kit).

Each check is a documented rule (stable id, category, one-line rule, why it matters on a
cluster) implemented as a function of a :class:`CheckContext`. The catalogue knows nothing of
pytest's plugin: it receives the callback under test (:class:`Subject`), the cluster
(:class:`~conformance.cluster_api.Cluster`) and the settings as arguments.

``Host``, ``HostScope`` and ``LiveHost`` are the old names of :class:`Cluster`,
:class:`ClusterScope` and :class:`WorkerCluster`, kept for downstream imports.
"""

from __future__ import annotations

from .bench import Bench
from .catalogue import (
    CATALOGUE,
    CATALOGUE_VERSION,
    checks_for,
    get_check,
    markdown_table,
    text_listing,
)
from .checks.loading import start_probe_early
from .cluster_api import (
    DOWNLOAD_FAILS,
    FAULTS,
    PLACEMENT_INFEASIBLE,
    Cluster,
    ClusterScope,
    WorkerCluster,
    WorkerRun,
)
from .context import CheckContext, Settings
from .failure import DOES_NOT_LOAD, Advice, CheckFailed, CheckSkipped, Inconclusive
from .registry import CALLBACK, CALLBACKBASE, CATEGORIES, CLUSTERS, RUNS_ON, STYLES, Check
from .subject import Subject, style_of

Host = Cluster
HostScope = ClusterScope
LiveHost = WorkerCluster

__all__ = [
    "CALLBACK",
    "CALLBACKBASE",
    "CATALOGUE",
    "CATALOGUE_VERSION",
    "CATEGORIES",
    "CLUSTERS",
    "DOES_NOT_LOAD",
    "DOWNLOAD_FAILS",
    "FAULTS",
    "PLACEMENT_INFEASIBLE",
    "RUNS_ON",
    "STYLES",
    "Advice",
    "Bench",
    "Check",
    "CheckContext",
    "CheckFailed",
    "CheckSkipped",
    "Cluster",
    "ClusterScope",
    "Host",
    "HostScope",
    "Inconclusive",
    "LiveHost",
    "Settings",
    "Subject",
    "WorkerCluster",
    "WorkerRun",
    "checks_for",
    "get_check",
    "markdown_table",
    "start_probe_early",
    "style_of",
    "text_listing",
]
