"""The plugin's clusters as the checks see them (docs/design.md §Clusters).

:class:`FakeCheckCluster` serves each scenario from a fresh in-memory
:class:`~pytest_raycallbacks.fake_ray.FakeRayCluster` (default topology: a CPU head and two
8-GPU nodes), injecting the faults the catalogue asks for. :class:`LiveCheckCluster` wraps
the session's ``gpu_ray_cluster`` handle. Both satisfy :class:`conformance.cluster_api.Cluster`
(and the live one :class:`conformance.cluster_api.WorkerCluster`); the catalogue never sees the
plugin's types.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from conformance.cluster_api import DOWNLOAD_FAILS, FAULTS, PLACEMENT_INFEASIBLE, WorkerRun

if TYPE_CHECKING:
    from reference_runner import LLMConfig


def _noop() -> None:
    """A Ray task that does nothing (used to try a runtime env on the cluster)."""


# ---------------------------------------------------------------------- live


class _LiveScope:
    def __init__(self, cluster: Any, before: Any) -> None:
        self._cluster = cluster
        self._before = before

    def leaks(self) -> list[str]:
        leaks = self._cluster.leaks(self._before)
        return leaks.describe().splitlines() if leaks else []

    def fault_fired(self) -> str | None:
        return None

    def resources(self) -> Mapping[str, float]:
        return dict(self._cluster.ray.cluster_resources())

    def reconnect(self) -> None:
        """Connect the driver to the cluster again (a callback called ``ray.shutdown()``)."""
        self._cluster.ensure_connected()


class LiveCheckCluster:
    """The session's live cluster (``gpu_ray_cluster``) as the checks see it.

    ``worker_env_vars`` (the local S3's variables with ``--raycallbacks-s3``) go into the
    runtime env of each actor ``run_in_worker`` runs ``initialize_node`` in: the process
    where the callback's hooks run gets them whoever started the cluster.
    """

    name = "live"
    faults: frozenset[str] = frozenset()

    def __init__(self, cluster: Any, *, worker_env_vars: Mapping[str, str] | None = None) -> None:
        self.cluster = cluster
        self.worker_env_vars = dict(worker_env_vars or {})
        self._description: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            raw = self.cluster.describe()
            nodes = raw.get("nodes") or []
            gpus = sum(int(n.get("gpus", 0)) for n in nodes)
            physical = bool(raw.get("physical"))
            summary = (
                f"{'physical' if physical else 'simulated'} GPUs, {len(nodes)} node(s), "
                f"{gpus} GPU(s), mode {raw.get('mode')}, address {raw.get('address')}"
            )
            self._description = {
                "name": "live",
                "mode": raw.get("mode"),
                "physical": physical,
                "address": raw.get("address"),
                "nodes": len(nodes),
                "gpus": gpus,
                "ray_version": raw.get("ray_version"),
                "summary": summary,
            }
        return self._description

    def reconnect(self) -> None:
        """Connect the driver to the cluster again if something disconnected it."""
        self.cluster.ensure_connected()

    @contextlib.contextmanager
    def scope(self, fault: str | None = None) -> Iterator[_LiveScope]:
        if fault is not None:
            raise ValueError(f"the live cluster cannot inject {fault!r}")
        self.cluster.ensure_connected()
        before = self.cluster.snapshot()
        try:
            yield _LiveScope(self.cluster, before)
        finally:
            leaks = self.cluster.leaks(before)
            if leaks:
                self.cluster.release(leaks)

    def run_in_worker(self, config: LLMConfig, *, timeout_s: float) -> WorkerRun:
        before = self.cluster.snapshot()
        try:
            result = self.cluster.run_initialize_node(
                config,
                timeout_s=max(timeout_s * 4, 60.0),
                callback_timeout_s=timeout_s,
                runtime_env={"env_vars": self.worker_env_vars} if self.worker_env_vars else None,
            )
        except Exception as exc:
            run = WorkerRun(error=exc)
        else:
            run = WorkerRun(
                error=None,
                trace=tuple(result.trace),
                extra_init_kwargs=dict(result.extra_init_kwargs or {}),
                runtime_env=result.runtime_env,
                bundles=tuple(result.bundles),
                strategy=result.strategy,
            )
            run = dataclasses.replace(run, **self._model_files(result, timeout_s))
        leaks = self.cluster.leaks(before)
        if leaks:
            self.cluster.release(leaks)
            run = dataclasses.replace(run, leaks=tuple(leaks.describe().splitlines()))
        return run

    def _model_files(self, result: Any, timeout_s: float) -> dict[str, Any]:
        """``missing_model`` of a run (read on each node of its final group), or why it
        could not be read (``model_check_error``)."""
        from pytest_raycallbacks.live.execution import final_group_missing_model

        try:
            missing = final_group_missing_model(
                self.cluster, result, timeout_s=max(timeout_s, 30.0)
            )
        except Exception as exc:
            return {"model_check_error": f"{type(exc).__name__}: {exc}"}
        return {"missing_model": missing}

    def ship(self, obj: Any, *, timeout_s: float) -> None:
        self.cluster.check_shippable(obj, timeout_s=max(timeout_s, 30.0))

    def check_runtime_env(self, runtime_env: Mapping[str, Any], *, timeout_s: float) -> None:
        self.cluster.run_remote(
            _noop,
            runtime_env=dict(runtime_env),
            what="a task with the callback's runtime_env to run",
            timeout_s=max(timeout_s, 30.0),
        )


# ---------------------------------------------------------------------- fake


class FakeCheckCluster:
    """A fresh in-memory cluster per scenario (see the module docstring). With
    ``keep_routed``, Ray's functions stay routed to the fake between scenarios (starting a
    cluster then skips rescanning every module) until :meth:`release`; the kit asks for it,
    and releases when the next item is not one of its own, and at the end of the run."""

    name = "fake"
    faults: frozenset[str] = frozenset(FAULTS)

    def __init__(self, *, keep_routed: bool = False) -> None:
        self.keep_routed = keep_routed

    def describe(self) -> dict[str, Any]:
        return {"name": "fake", "summary": "in memory: a CPU head and two nodes of 8 GPUs"}

    def release(self) -> None:
        """Give Ray's functions back exactly as they were (idempotent; a later scenario
        routes them again)."""
        from pytest_raycallbacks.fake_ray.patching import release_routing

        release_routing()

    @contextlib.contextmanager
    def scope(self, fault: str | None = None) -> Iterator[_FakeScope]:
        from pytest_raycallbacks.fake_ray import FakeRayCluster

        if fault not in (None, *FAULTS):
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
        gpu_nodes = 0 if fault == PLACEMENT_INFEASIBLE else 2
        with FakeRayCluster(
            gpu_nodes=gpu_nodes,
            model_cache_dir=False,
            name="raycallbacks-kit",
            keep_routed=self.keep_routed,
        ) as cluster:
            yield _FakeScope(cluster, fault)


class _FakeScope:
    def __init__(self, cluster: Any, fault: str | None) -> None:
        from pytest_raycallbacks.fake_ray.cluster import DOWNLOAD_FUNCTION

        self._cluster = cluster
        self._fault = fault
        self._download_fault: Any = None
        if fault == DOWNLOAD_FAILS:
            self._download_fault = cluster.inject_fault(
                function=DOWNLOAD_FUNCTION,
                error=OSError("model download failed: fault injected by the conformance kit"),
            )

    def leaks(self) -> list[str]:
        report = self._cluster.leaks()
        lines = [
            f"placement group {g.id} (bundles {list(g.bundles)}, {g.strategy}, state {g.state}, "
            f"created by {g.creator})"
            for g in report.placement_groups
        ]
        lines += [f"task {t.name} ({t.function}), still {t.state.lower()}" for t in report.tasks]
        lines += [f"actor {a}, still alive" for a in report.actors]
        return lines

    def fault_fired(self) -> str | None:
        if self._download_fault is not None and self._download_fault.fired:
            return f"{self._download_fault.fired} model download task(s) failed"
        if self._fault == PLACEMENT_INFEASIBLE:
            never = [g for g in self._cluster.placement_groups if not any(g.bundle_nodes)]
            if never:
                return f"{len(never)} placement group(s) could never be placed ({never[0].bundles})"
        return None

    def resources(self) -> Mapping[str, float]:
        return dict(self._cluster.cluster_resources())
