"""An in-memory Ray cluster for tests: ``FakeRayCluster`` and the ``fake_ray_cluster`` fixture.

Ray's public API (placement groups, tasks, actors, objects, cluster state) is served from
memory with Ray 2.60's validation, errors and scheduling rules, so a callback and
``reference_runner.initialize_node`` run against it unchanged, in milliseconds, with no Ray
process and no port. See ``docs/fake_ray_cluster.md``.

Modules, each with one job:

* :mod:`.cluster` -- :class:`FakeRayCluster`, the context manager and test handle;
* :mod:`.fixture` -- the pytest fixture and marker;
* :mod:`.patching` -- routing Ray's API to the fake and restoring it by identity;
* :mod:`.active` -- which fake cluster is active in the process;
* :mod:`.api` -- the fake implementation of each Ray function;
* :mod:`.engine` -- state, scheduling, waits and task execution (a core and one module per
  job: nodes, groups, objects, scheduling, execution, actors, describing);
* :mod:`.placement` -- PACK / SPREAD / STRICT_PACK / STRICT_SPREAD;
* :mod:`.model`, :mod:`.resources`, :mod:`.topology`, :mod:`.ids`, :mod:`.clock`,
  :mod:`.context`, :mod:`.environ`, :mod:`.refs`, :mod:`.actors`, :mod:`.faults`,
  :mod:`.introspection`, :mod:`.errors` -- the pieces.

Importing this package does not import Ray (``FakeRayCluster`` imports it when started).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_raycallbacks._lazy import lazy_exports

if TYPE_CHECKING:
    from .cluster import FakeRayCluster, NodeInfo
    from .errors import (
        FakeRayActivationError,
        FakeRayDeadlockError,
        FakeRayLeakWarning,
        FakeRayUnsupported,
    )
    from .faults import Fault
    from .introspection import (
        CallRecord,
        DownloadRecord,
        LeakReport,
        PlacementGroupRecord,
        TaskRecord,
    )
    from .topology import NodeSpec, default_topology, gpu_node, head_node

# Imported on first use (PEP 562), so that pytest loading the plugin, which imports the
# fixture module, does not pay for the whole fake.
_LAZY = {
    "FakeRayCluster": "cluster",
    "NodeInfo": "cluster",
    "FakeRayActivationError": "errors",
    "FakeRayDeadlockError": "errors",
    "FakeRayLeakWarning": "errors",
    "FakeRayUnsupported": "errors",
    "Fault": "faults",
    "CallRecord": "introspection",
    "DownloadRecord": "introspection",
    "LeakReport": "introspection",
    "PlacementGroupRecord": "introspection",
    "TaskRecord": "introspection",
    "NodeSpec": "topology",
    "default_topology": "topology",
    "gpu_node": "topology",
    "head_node": "topology",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CallRecord",
    "DownloadRecord",
    "FakeRayActivationError",
    "FakeRayCluster",
    "FakeRayDeadlockError",
    "FakeRayLeakWarning",
    "FakeRayUnsupported",
    "Fault",
    "LeakReport",
    "NodeInfo",
    "NodeSpec",
    "PlacementGroupRecord",
    "TaskRecord",
    "default_topology",
    "gpu_node",
    "head_node",
]
