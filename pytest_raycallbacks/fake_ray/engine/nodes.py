# mypy: disable-error-code="no-untyped-call"
# (Ray's exception classes are untyped.)
"""The engine's nodes: adding and removing them, and the resources Ray reports for them.

Contract: a node's totals and labels are what Ray would report for it (see
:mod:`..topology`); removing a node (a removal or a failure) reschedules the bundles it held
(the group goes ``RESCHEDULING`` and waits for room), retries or fails the tasks running
there with Ray's ``NodeDiedError``, and kills the actors it hosted. ``ray.nodes()``,
``ray.cluster_resources()`` and ``ray.available_resources()`` are shaped as Ray shapes them,
placement group resources (``CPU_group_<i>_<id>`` ...) included.
"""

from __future__ import annotations

from typing import Any

from ray.exceptions import NodeDiedError

from pytest_raycallbacks.fake_ray.model import Node
from pytest_raycallbacks.fake_ray.placement import full_gpu_capacity
from pytest_raycallbacks.fake_ray.resources import GPU, SCALE, Units, add, from_units, to_units
from pytest_raycallbacks.fake_ray.topology import NodeSpec

from .core import EngineCore


class EngineNodes(EngineCore):
    """Nodes and the cluster-wide resource views (see the module doc)."""

    def _add_node(self, spec: NodeSpec) -> Node:
        index = len(self._nodes)
        node_id = self.ids.node_id(index)
        ip = f"10.{(index // 62500) % 256}.{(index // 250) % 250}.{index % 250 + 1}"
        name = spec.name or ("head" if spec.head else f"node-{index}")
        if name in self._by_name:
            raise ValueError(f"a node named {name!r} already exists in this fake cluster")
        totals: dict[str, float] = {
            "CPU": spec.num_cpus,
            "memory": spec.memory,
            "object_store_memory": spec.object_store_memory,
            f"node:{ip}": 1.0,
        }
        if spec.num_gpus:
            totals[GPU] = spec.num_gpus
        if spec.head:
            totals["node:__internal_head__"] = 1.0
        if spec.accelerator_type:
            totals[f"accelerator_type:{spec.accelerator_type}"] = 1.0
        totals.update(spec.resources)
        total = to_units(totals)
        labels = {"ray.io/node-id": node_id}
        if spec.accelerator_type:
            labels["ray.io/accelerator-type"] = spec.accelerator_type
        labels.update(spec.labels)
        capacity = full_gpu_capacity(spec.num_gpus)
        node = Node(
            index=index,
            node_id=node_id,
            name=name,
            ip=ip,
            is_head=spec.head,
            total=total,
            avail=dict(total),
            gpus=list(capacity),
            gpu_capacity=capacity,
            labels=labels,
            env=dict(spec.env),
            added_at=self.clock.now(),
        )
        self._nodes.append(node)
        self._by_id[node_id] = node
        self._by_name[name] = node
        self._alive.append(node)
        return node

    def add_node(self, spec: NodeSpec) -> Node:
        with self._lock:
            self.check_open()
            if spec.head:
                raise ValueError("a fake cluster has exactly one head node; add_node adds workers")
            node = self._add_node(spec)
            self._pump()
            return node

    def node(self, ref: str | Node) -> Node:
        """A node by name, id, or the node itself."""
        with self._lock:
            if isinstance(ref, Node):
                return ref
            node = self._by_name.get(ref) or self._by_id.get(ref)
            if node is None:
                raise KeyError(
                    f"no node {ref!r} in this fake cluster; nodes: {[n.name for n in self._nodes]}"
                )
            return node

    def all_nodes(self) -> list[Node]:
        with self._lock:
            return list(self._nodes)

    def remove_node(self, ref: str | Node, *, failure: bool) -> Node:
        """Take a node out: its bundles are rescheduled (or wait), its tasks fail or are
        retried elsewhere, its actors die."""
        with self._lock:
            self.check_open()
            node = self.node(ref)
            if node.is_head:
                raise ValueError(
                    "the head node cannot be removed: the driver runs there (remove a worker "
                    "node, or build the cluster with another head)"
                )
            if not node.alive:
                raise ValueError(f"node {node.name!r} is already dead")
            node.alive = False
            node.removed_at = self.clock.now()
            node.death_reason = 1 if failure else 2
            node.death_message = (
                "node failure injected by fake_ray_cluster"
                if failure
                else "removed by fake_ray_cluster.remove_node"
            )
            self._alive = [n for n in self._alive if n is not node]
            died = NodeDiedError(
                f"The node {node.node_id} ({node.ip}) where this task was running died: "
                f"{node.death_message}."
            )
            for group in self.groups.values():
                if group.state in ("CREATED", "RESCHEDULING") and any(
                    b.node is node for b in group.bundles
                ):
                    for bundle in group.bundles:
                        if bundle.node is node:
                            bundle.node = None
                            bundle.gpu_alloc = []
                            bundle.avail = {}
                            bundle.gpus = {}
                    group.state = "RESCHEDULING"
                    group.scheduling_state = "RESCHEDULING"
                    if group not in self._pending_groups:
                        self._pending_groups.insert(0, group)
            for task in list(self.tasks.values()):
                if task.state == "RUNNING" and task.node is node:
                    if task.kind == "actor_method":
                        continue  # failed with its actor below
                    self._abort_attempt(task, died, retry=task.kind == "task")
            for actor in list(self.actors.values()):
                if actor.state != "DEAD" and actor.creation.node is node:
                    self._kill_actor(actor, f"The actor died because its node {node.node_id} died.")
            self._pump()
            return node

    # ------------------------------------------------------------------ resources view

    def cluster_resources(self) -> dict[str, float]:
        with self._lock:
            total: Units = {}
            for node in self._alive:
                add(total, node.total)
            self._add_group_resources(total, available=False)
            return from_units(total)

    def available_resources(self) -> dict[str, float]:
        with self._lock:
            avail: Units = {}
            for node in self._alive:
                add(avail, node.avail)
            self._add_group_resources(avail, available=True)
            return {k: v for k, v in from_units(avail).items() if v > 0}

    def _add_group_resources(self, out: Units, *, available: bool) -> None:
        for group in self.groups.values():
            if group.state not in ("CREATED", "RESCHEDULING"):
                continue
            h = group.hex
            for bundle in group.bundles:
                if bundle.node is None:
                    continue
                amounts = bundle.avail if available else bundle.demand
                for k in bundle.demand:
                    v = amounts.get(k, 0)
                    out[f"{k}_group_{bundle.index}_{h}"] = v
                    out[f"{k}_group_{h}"] = out.get(f"{k}_group_{h}", 0) + v
                out[f"bundle_group_{bundle.index}_{h}"] = 1000 * SCALE
                out[f"bundle_group_{h}"] = out.get(f"bundle_group_{h}", 0) + 1000 * SCALE

    def nodes_info(self) -> list[dict[str, Any]]:
        """``ray.nodes()``: one dict per node ever in the cluster, as Ray shapes it."""
        with self._lock:
            return [
                {
                    "NodeID": n.node_id,
                    "Alive": n.alive,
                    "NodeManagerAddress": n.ip,
                    "NodeManagerHostname": f"fake-{n.name}",
                    "NodeManagerPort": 0,
                    "ObjectManagerPort": 0,
                    "ObjectStoreSocketName": "",
                    "RayletSocketName": "",
                    "MetricsExportPort": 0,
                    "MetricsAgentPort": 0,
                    "DashboardAgentListenPort": 0,
                    "NodeName": n.ip,
                    "RuntimeEnvAgentPort": 0,
                    "DeathReason": n.death_reason,
                    "DeathReasonMessage": n.death_message,
                    "alive": n.alive,
                    "Resources": from_units(n.total) if n.alive else {},
                    "Labels": dict(n.labels),
                }
                for n in self._nodes
            ]
