"""The narrow interface the checks need from a cluster (docs/design.md §Clusters).

The catalogue never imports the plugin or its cluster fixtures: the plugin adapts the
in-memory fake cluster and the live ``gpu_ray_cluster`` to these protocols
(:class:`Cluster`, :class:`ClusterScope`, :class:`WorkerCluster`) and hands them to the checks.
Everything here is structural (``typing.Protocol``); nothing imports Ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from reference_runner import LLMConfig

#: Faults a fake cluster can inject. ``download-fails``: every model download task on
#: every node fails. ``placement-infeasible``: the cluster has no GPU at all, so no GPU
#: placement group can ever be placed.
DOWNLOAD_FAILS: Final = "download-fails"
PLACEMENT_INFEASIBLE: Final = "placement-infeasible"
FAULTS: Final = (DOWNLOAD_FAILS, PLACEMENT_INFEASIBLE)


class ClusterScope(Protocol):
    """A cluster while one scenario runs: Ray's API reaches this cluster inside the scope.

    A scope may also have ``reconnect()``, connecting the driver to the cluster again after
    a callback disconnected it (the live cluster's way); without it the kit calls
    ``ray.init(address=...)`` (see :func:`conformance.process_state.restore`).
    """

    def leaks(self) -> list[str]:
        """Placement groups and actors created inside this scope that are still alive,
        one readable line each (empty when nothing is left behind)."""
        ...

    def fault_fired(self) -> str | None:
        """What the injected fault broke, if it was hit in this scope (``None`` when no
        fault was injected or nothing ran into it)."""
        ...

    def resources(self) -> Mapping[str, float]:
        """The cluster's total resources (for messages such as 'the cluster has ...')."""
        ...


class Cluster(Protocol):
    """A cluster the checks run the callback on.

    ``name`` is ``"fake"`` or ``"live"``; ``faults`` the faults :meth:`scope` can inject.
    """

    name: str
    faults: frozenset[str]

    def describe(self) -> dict[str, Any]:
        """What the certificate records about this cluster (JSON-able), e.g.
        ``{"name": "live", "gpus": "simulated", "address": "...", "nodes": 3}``."""
        ...

    def scope(self, fault: str | None = None) -> AbstractContextManager[ClusterScope]:
        """Enter the cluster (connected, or patched in) with ``fault`` injected, if any."""
        ...


@dataclass(frozen=True)
class WorkerRun:
    """``initialize_node`` run inside a Ray worker (a live cluster's actor).

    ``error`` is the exception it raised (rebuilt in the driver), else ``None``; the other
    fields describe its output. ``trace`` holds ``reference_runner.TraceEntry`` records.
    ``missing_model`` is ``{node id: what it lacks}`` for the nodes of the final placement
    group, read by a task on each of those nodes (``{}``: each holds the model files;
    ``None``: not read, or ``skip_default_init`` was set); ``model_check_error`` says why
    the nodes could not be read.
    """

    error: BaseException | None
    trace: tuple[Any, ...] = ()
    extra_init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    runtime_env: Mapping[str, Any] | None = None
    bundles: tuple[Mapping[str, float], ...] = ()
    strategy: str | None = None
    leaks: tuple[str, ...] = ()
    missing_model: Mapping[str, str] | None = None
    model_check_error: str | None = None


class WorkerCluster(Cluster, Protocol):
    """A cluster whose Ray workers can run code (a live cluster; named apart from the plugin's
    ``pytest_raycallbacks.live.LiveCluster`` handle, which it adapts)."""

    def run_in_worker(self, config: LLMConfig, *, timeout_s: float) -> WorkerRun:
        """Run ``initialize_node(config)`` inside a Ray actor on the cluster, the config's
        callbacks loaded there from their import paths; remove what it created."""
        ...

    def ship(self, obj: Any, *, timeout_s: float) -> None:
        """Send ``obj`` to a Ray worker and rebuild it there; raise an exception whose
        message says why when that fails."""
        ...

    def check_runtime_env(self, runtime_env: Mapping[str, Any], *, timeout_s: float) -> None:
        """Start a trivial task with ``runtime_env``; raise if Ray rejects it."""
        ...
