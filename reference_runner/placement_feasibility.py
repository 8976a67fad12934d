"""Whether a placement group could ever be placed on a cluster's nodes, and if not, why.

The rule (one for the fake cluster and for ``initialize_node`` on a live one): a group can
never be placed when, even with every alive node empty (its *total* resources), one of
these holds:

* some bundle fits on no node by itself (its resources, its whole GPUs as whole devices and
  a fraction of a GPU on one device, its label selector);
* ``STRICT_PACK``: no node holds the sum of all the bundles (and matches every selector);
* ``STRICT_SPREAD``: the bundles cannot each get a node of their own that holds them (a
  matching of bundles to distinct nodes, computed exactly);
* ``PACK``/``SPREAD``: together the bundles ask for more of a resource than all the nodes
  have.

Each condition proves that no arrangement exists, so the rule never calls a group that
could be placed infeasible (whatever order a scheduler tries nodes in); a group that passes
it may still never fit where only an exhaustive search would tell (GPUs shared out per
device), and then waits, bounded, as before. The fake cluster marks a group that breaks it
``INFEASIBLE``; ``initialize_node`` fails at once when it would wait for one on a cluster
that cannot grow (:mod:`reference_runner.placement_wait`). Label selectors are honoured when
given; where they are unknown (a live group's handle does not carry them) the rule is
looser, never stricter. Pure Python; no Ray needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

#: Ray keeps resource quantities as integers of 1/10000 of a unit; so does the rule.
SCALE: Final = 10_000
GPU: Final = "GPU"
STRATEGIES: Final = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
#: Bookkeeping resources Ray adds to nodes and groups; never shown in messages.
_HIDDEN_PREFIXES: Final = ("node:", "memory", "object_store_memory", "bundle_group_")

Units = dict[str, int]


class TotalsNode(Protocol):
    """A node as the rule reads it: identity, labels, totals in units, GPU devices."""

    @property
    def node_id(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def total(self) -> Mapping[str, int]: ...
    @property
    def gpu_capacity(self) -> list[int]: ...


class DemandBundle(Protocol):
    """A bundle as the rule reads it: its demand in units and its label selector."""

    @property
    def demand(self) -> Mapping[str, int]: ...
    @property
    def selector(self) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class NodeCapacity:
    """One alive node's total resources (as ``ray.nodes()`` reports its ``Resources``) and
    labels."""

    node_id: str
    resources: Mapping[str, float]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Node:
    node_id: str
    labels: Mapping[str, str]
    total: Mapping[str, int]
    gpu_capacity: list[int]


@dataclass(frozen=True)
class _Bundle:
    demand: Mapping[str, int]
    selector: Mapping[str, str] | None


def to_units(resources: Mapping[str, float]) -> Units:
    """``{"GPU": 0.5}`` -> ``{"GPU": 5000}``; zero quantities are dropped."""
    out: Units = {}
    for name, value in resources.items():
        units = round(float(value) * SCALE)
        if units:
            out[name] = units
    return out


def full_gpu_capacity(num_gpus: float) -> list[int]:
    """Per-device capacity of a node with ``num_gpus`` GPUs (a fraction makes a last,
    partial device)."""
    units = round(num_gpus * SCALE)
    whole, rest = divmod(units, SCALE)
    return [SCALE] * whole + ([rest] if rest else [])


def label_match(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    """Does a node with ``labels`` satisfy a Ray label selector?

    Values: ``"v"`` (equals), ``"!v"`` (not equals), ``"in(a,b)"``, ``"!in(a,b)"``.
    """
    if not selector:
        return True
    for key, expr in selector.items():
        have = labels.get(key)
        negate = expr.startswith("!")
        body = expr[1:] if negate else expr
        if body.startswith("in(") and body.endswith(")"):
            options = {v.strip() for v in body[3:-1].split(",") if v.strip()}
            ok = have in options
        else:
            ok = have == body
        if ok == negate:
            return False
    return True


def _fits(have: Mapping[str, int], need: Mapping[str, int]) -> bool:
    return all(need_q <= 0 or have.get(name, 0) >= need_q for name, need_q in need.items())


def _gpus_fit(devices: Sequence[int], units: int) -> bool:
    """Can empty devices of these capacities hold ``units`` of GPU for one bundle (whole
    GPUs on whole devices, a fraction on one more device)?"""
    whole, fraction = divmod(units, SCALE)
    full = sum(1 for d in devices if d >= SCALE)
    if full < whole:
        return False
    if not fraction:
        return True
    return full > whole or any(fraction <= d < SCALE for d in devices)


def holds_alone(node: TotalsNode, bundle: DemandBundle) -> bool:
    """Could ``node``, empty, hold ``bundle`` by itself?"""
    if bundle.selector and not label_match(node.labels, bundle.selector):
        return False
    if not _fits(node.total, bundle.demand):
        return False
    return _gpus_fit(node.gpu_capacity, bundle.demand.get(GPU, 0))


def never_placed(
    bundles: Sequence[DemandBundle], strategy: str, nodes: Sequence[TotalsNode]
) -> str | None:
    """The rule: ``None`` when ``bundles`` could be placed with ``strategy`` on ``nodes``
    (the alive ones, empty), else why not, in words that end a sentence starting "it asks
    for bundles ... with strategy ..., but"."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown placement strategy {strategy!r}; expected one of {STRATEGIES}")
    if not bundles:
        return None
    if not nodes:
        return "the cluster has no alive node"
    for i, bundle in enumerate(bundles):
        if not any(holds_alone(node, bundle) for node in nodes):
            return _lonely_bundle(i, bundle, nodes)
    together = _sum(b.demand for b in bundles)
    if strategy == "STRICT_PACK":
        hosts = [n for n in nodes if all(label_match(n.labels, b.selector) for b in bundles)]
        if not any(_fits(n.total, together) for n in hosts):
            return (
                f"STRICT_PACK puts every bundle on one node, and no node can hold "
                f"{format_units(together)} (the largest node has {_largest(together, nodes)})"
            )
        return None
    if strategy == "STRICT_SPREAD":
        placed = _distinct_nodes(bundles, nodes)
        if placed < len(bundles):
            return (
                f"STRICT_SPREAD puts each bundle on a different node: it needs {len(bundles)} "
                f"nodes that can hold one of its bundles each, and the cluster's "
                f"{len(nodes)} node(s) can give only {placed}"
            )
        return None
    cluster = _sum(n.total for n in nodes)
    short = {k: v for k, v in together.items() if cluster.get(k, 0) < v}
    if short:
        return (
            f"together its bundles need {format_units(short)}, more than the "
            f"{format_units({k: cluster.get(k, 0) for k in short})} all nodes have"
        )
    return None


def why_never_placed(
    bundles: Sequence[Mapping[str, float]],
    strategy: str,
    nodes: Sequence[NodeCapacity],
    selectors: Sequence[Mapping[str, str] | None] | None = None,
) -> str | None:
    """:func:`never_placed` for quantities in Ray's units (``{"GPU": 1.0}``), as a live
    cluster reports them; ``selectors`` are the bundles' label selectors, when known."""
    wanted = [
        _Bundle(to_units(b), (selectors[i] or None) if selectors else None)
        for i, b in enumerate(bundles)
    ]
    cluster = [
        _Node(
            node_id=n.node_id,
            labels=dict(n.labels),
            total=to_units(n.resources),
            gpu_capacity=full_gpu_capacity(float(n.resources.get(GPU, 0.0))),
        )
        for n in nodes
    ]
    return never_placed(wanted, strategy, cluster)


def _sum(demands: Iterable[Mapping[str, int]]) -> Units:
    out: Units = {}
    for demand in demands:
        for name, value in demand.items():
            out[name] = out.get(name, 0) + value
    return out


def _distinct_nodes(bundles: Sequence[DemandBundle], nodes: Sequence[TotalsNode]) -> int:
    """How many of ``bundles`` can get a node of their own: a maximum matching of bundles to
    nodes that hold them alone, computed on classes of equal bundles and equal nodes (a
    flow from bundle classes to node classes), so thousands of alike nodes cost little."""
    use_labels = any(b.selector for b in bundles)
    bundle_classes: dict[tuple[object, ...], list[DemandBundle]] = {}
    for b in bundles:
        bundle_key = (tuple(sorted(b.demand.items())), tuple(sorted((b.selector or {}).items())))
        bundle_classes.setdefault(bundle_key, []).append(b)
    # Only the resources some bundle asks for tell nodes apart: without this, Ray's
    # per-node resources (``node:<ip>``) would make every node a class of its own.
    asked = {name for b in bundles for name in b.demand}
    node_classes: dict[tuple[object, ...], list[TotalsNode]] = {}
    for n in nodes:
        labels = tuple(sorted(n.labels.items())) if use_labels else ()
        totals = tuple(sorted((k, v) for k, v in n.total.items() if k in asked))
        gpus = tuple(n.gpu_capacity) if GPU in asked else ()
        node_key = (totals, gpus, labels)
        node_classes.setdefault(node_key, []).append(n)
    sources = [(len(group), group[0]) for group in bundle_classes.values()]
    sinks = [(len(group), group[0]) for group in node_classes.values()]
    edges = [[j for j, (_, n) in enumerate(sinks) if holds_alone(n, b)] for _, b in sources]
    return _max_flow([c for c, _ in sources], [c for c, _ in sinks], edges)


def _max_flow(supply: list[int], capacity: list[int], edges: list[list[int]]) -> int:
    """Maximum flow from sources (``supply``) to sinks (``capacity``) along ``edges``
    (source -> sinks, unbounded), by augmenting paths."""
    flow = [[0] * len(capacity) for _ in supply]  # source i -> sink j
    left = list(supply)
    room = list(capacity)
    total = 0

    def augment(i: int, seen: set[int], amount: int) -> int:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if room[j] > 0:
                pushed = min(amount, room[j])
                room[j] -= pushed
                flow[i][j] += pushed
                return pushed
            for k in range(len(supply)):  # reroute a source that uses sink j elsewhere
                if k != i and flow[k][j] > 0:
                    moved = augment(k, seen, min(amount, flow[k][j]))
                    if moved:
                        flow[k][j] -= moved
                        flow[i][j] += moved
                        return moved
        return 0

    for i in range(len(supply)):
        while left[i] > 0:
            pushed = augment(i, set(), left[i])
            if not pushed:
                break
            left[i] -= pushed
            total += pushed
    return total


def _lonely_bundle(index: int, bundle: DemandBundle, nodes: Sequence[TotalsNode]) -> str:
    text = f"bundle {index} {format_units(bundle.demand)}"
    if bundle.selector and not any(label_match(n.labels, bundle.selector) for n in nodes):
        return f"no node matches {text}'s label selector {dict(bundle.selector)}"
    return f"no node can hold {text} (the largest node has {_largest(bundle.demand, nodes)})"


def _largest(demand: Mapping[str, int], nodes: Sequence[TotalsNode]) -> str:
    """The most each node has of the resources ``demand`` names (``GPU: 2, CPU: 8``)."""
    names = [k for k in demand if not _hidden(k)] or list(demand)
    most = {name: max(n.total.get(name, 0) for n in nodes) for name in names}
    return ", ".join(f"{name}: {most[name] / SCALE:g}" for name in sorted(most))


def _hidden(name: str) -> bool:
    return name.startswith(_HIDDEN_PREFIXES) or "_group_" in name


def format_units(units: Mapping[str, int]) -> str:
    """``{CPU: 2, GPU: 8}`` for messages; Ray's bookkeeping resources are hidden."""
    shown = {k: v for k, v in sorted(units.items()) if not _hidden(k)}
    return "{" + ", ".join(f"{k}: {v / SCALE:g}" for k, v in shown.items()) + "}"


def format_resources(resources: Mapping[str, float]) -> str:
    """:func:`format_units` for quantities in Ray's units (``{"GPU": 2.0}``)."""
    return format_units(to_units(resources))
