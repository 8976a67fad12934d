"""What is on the cluster: its nodes, and the placement groups and actors we created.

Contract:

* :func:`list_nodes` reads ``ray.nodes()``: every node with its id, address, whether it is
  the head, its total resources and its GPU count (``alive_only`` by default).
  :func:`wait_nodes_alive` and :func:`wait_node_gone` wait, bounded, until nodes have
  joined or the cluster has marked one dead.
* Ownership: a placement group or actor is *ours* when the job that created it is one of
  this handle's driver jobs (a placement group id ends with its job id; the actor table
  names the job). Detached actors created by our jobs are ours too. Nothing else on the
  cluster is ever listed as a leak or removed.
* :func:`take_snapshot` records our live groups and actors; :func:`find_leaks` lists those
  alive now that were not in the snapshot; :func:`release` removes/kills them and waits,
  bounded, until the cluster says they are gone.
* Only GCS tables are read (``ray.util.placement_group_table``, the actor table), so it
  works without the dashboard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .waits import wait_until
from .wording import short_id

_PG_GONE = ("REMOVED",)
_ACTOR_GONE = ("DEAD",)


@dataclass(frozen=True)
class NodeInfo:
    """One Ray node. ``resources`` are its totals; ``gpus`` its GPU count."""

    node_id: str
    address: str
    is_head: bool
    alive: bool
    resources: Mapping[str, float]

    @property
    def gpus(self) -> int:
        return int(self.resources.get("GPU", 0))

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0))


def list_nodes(ray: Any, *, alive_only: bool = True) -> list[NodeInfo]:
    """The cluster's nodes, head first, then by node id."""
    nodes = []
    for raw in ray.nodes():
        resources = {str(k): float(v) for k, v in (raw.get("Resources") or {}).items()}
        info = NodeInfo(
            node_id=str(raw["NodeID"]),
            address=str(raw.get("NodeManagerAddress", "")),
            is_head="node:__internal_head__" in resources,
            alive=bool(raw.get("Alive")),
            resources=resources,
        )
        if info.alive or not alive_only:
            nodes.append(info)
    return sorted(nodes, key=lambda n: (not n.is_head, n.node_id))


def wait_nodes_alive(ray: Any, node_ids: Collection[str], *, where: str, timeout_s: float) -> None:
    """Wait until every node of ``node_ids`` is alive in the cluster at ``where`` (an address,
    for the message); the timeout lists the nodes alive at the end."""
    wanted = set(node_ids)

    def alive() -> bool:
        return wanted <= {n.node_id for n in list_nodes(ray)}

    wait_until(
        alive,
        what=f"node(s) {sorted(short_id(i) for i in wanted)} to join the cluster at {where}",
        timeout_s=timeout_s,
        detail=lambda: "alive now: " + str([short_id(n.node_id) for n in list_nodes(ray)]),
    )


def wait_node_gone(ray: Any, node_id: str, *, timeout_s: float) -> None:
    """Wait until the cluster no longer lists ``node_id`` among its alive nodes."""
    wait_until(
        lambda: all(n.node_id != node_id for n in list_nodes(ray)),
        what=f"the cluster to mark node {short_id(node_id)} dead",
        timeout_s=timeout_s,
    )


@dataclass(frozen=True)
class PlacementGroupRecord:
    """A placement group of ours: id, name, state, bundles, strategy, bundle -> node."""

    id: str
    name: str
    state: str
    bundles: Mapping[int, Mapping[str, float]]
    strategy: str
    bundle_nodes: Mapping[int, str]


@dataclass(frozen=True)
class ActorRecord:
    """An actor of ours: id, class, name, state, detached or not, node, pid."""

    id: str
    class_name: str
    name: str
    state: str
    detached: bool
    node_id: str
    pid: int


@dataclass(frozen=True)
class Snapshot:
    """Ids of our live placement groups and actors at one moment."""

    placement_groups: frozenset[str]
    actors: frozenset[str]


@dataclass(frozen=True)
class Leaks:
    """Placement groups and actors of ours alive now that were not alive at a snapshot."""

    placement_groups: tuple[PlacementGroupRecord, ...] = field(default=())
    actors: tuple[ActorRecord, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.placement_groups or self.actors)

    def describe(self) -> str:
        """A readable list, one leak per line."""
        lines = [
            f"placement group {pg.id} (name {pg.name!r}, state {pg.state}, bundles "
            f"{dict(pg.bundles)}, strategy {pg.strategy})"
            for pg in self.placement_groups
        ]
        lines += [
            f"actor {a.id} (class {a.class_name}, name {a.name!r}, "
            f"state {a.state}{', detached' if a.detached else ''})"
            for a in self.actors
        ]
        return "\n".join(lines) if lines else "no leaks"


def our_placement_groups(ray: Any, job_ids: Iterable[str]) -> list[PlacementGroupRecord]:
    """Placement groups created by ``job_ids`` that are not removed."""
    jobs = tuple(j.lower() for j in job_ids)
    records = []
    for pg_id, entry in ray.util.placement_group_table().items():
        pg_id = str(entry.get("placement_group_id", pg_id))
        state = str(entry.get("state", ""))
        if state in _PG_GONE or not pg_id.lower().endswith(jobs):
            continue
        records.append(
            PlacementGroupRecord(
                id=pg_id,
                name=str(entry.get("name", "")),
                state=state,
                bundles={int(k): dict(v) for k, v in (entry.get("bundles") or {}).items()},
                strategy=str(entry.get("strategy", "")),
                bundle_nodes={
                    int(k): str(v) for k, v in (entry.get("bundles_to_node_id") or {}).items()
                },
            )
        )
    return records


def our_actors(ray: Any, job_ids: Iterable[str]) -> list[ActorRecord]:
    """Actors created by ``job_ids`` that are not dead (detached ones included)."""
    from ray._private import state  # the GCS actor table; works without the dashboard

    jobs = {j.lower() for j in job_ids}
    records = []
    for actor_id, entry in state.actors().items():
        if str(entry.get("JobID", "")).lower() not in jobs:
            continue
        if str(entry.get("State", "")) in _ACTOR_GONE:
            continue
        address = entry.get("Address") or {}
        records.append(
            ActorRecord(
                id=str(entry.get("ActorID", actor_id)),
                class_name=str(entry.get("ActorClassName", "")),
                name=str(entry.get("Name", "")),
                state=str(entry.get("State", "")),
                detached=bool(entry.get("IsDetached", False)),
                node_id=str(address.get("NodeID", "")),
                pid=int(entry.get("Pid", 0) or 0),
            )
        )
    return records


def take_snapshot(ray: Any, job_ids: Iterable[str]) -> Snapshot:
    """Our live placement groups and actors now."""
    jobs = list(job_ids)
    return Snapshot(
        frozenset(pg.id for pg in our_placement_groups(ray, jobs)),
        frozenset(a.id for a in our_actors(ray, jobs)),
    )


def find_leaks(ray: Any, job_ids: Iterable[str], since: Snapshot | None) -> Leaks:
    """Ours alive now and not in ``since`` (all of ours when ``since`` is None)."""
    jobs = list(job_ids)
    known_pgs = since.placement_groups if since else frozenset()
    known_actors = since.actors if since else frozenset()
    return Leaks(
        tuple(pg for pg in our_placement_groups(ray, jobs) if pg.id not in known_pgs),
        tuple(a for a in our_actors(ray, jobs) if a.id not in known_actors),
    )


def release(ray: Any, leaks: Leaks, job_ids: Iterable[str], *, timeout_s: float) -> None:
    """Remove the leaked placement groups and kill the leaked actors, then wait (bounded)
    until the cluster lists none of them as alive."""
    from ray.util.placement_group import PlacementGroup

    for pg in leaks.placement_groups:
        with contextlib.suppress(Exception):
            ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pg.id)))
    for actor in leaks.actors:
        _kill_actor(ray, actor)
    wanted_pgs = {pg.id for pg in leaks.placement_groups}
    wanted_actors = {a.id for a in leaks.actors}
    jobs = list(job_ids)

    def gone() -> bool:
        left_pgs = {pg.id for pg in our_placement_groups(ray, jobs)} & wanted_pgs
        left_actors = {a.id for a in our_actors(ray, jobs)} & wanted_actors
        return not left_pgs and not left_actors

    wait_until(
        gone,
        what=f"{len(wanted_pgs)} placement group(s) and {len(wanted_actors)} actor(s) to go",
        timeout_s=timeout_s,
        detail=lambda: find_leaks(ray, jobs, None).describe(),
    )


def _kill_actor(ray: Any, actor: ActorRecord) -> None:
    """Kill an actor by id (Ray's public ``ray.kill`` needs a handle, which an unnamed
    actor created elsewhere does not give us); falls back to its name."""
    try:
        core = ray._private.worker.global_worker.core_worker
        core.kill_actor(ray.ActorID.from_hex(actor.id), True)
        return
    except Exception:
        pass
    if actor.name:
        with contextlib.suppress(Exception):
            ray.kill(ray.get_actor(actor.name), no_restart=True)
