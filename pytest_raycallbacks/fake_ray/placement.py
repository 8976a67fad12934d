"""Placement of a group's bundles onto nodes: PACK, SPREAD, STRICT_PACK, STRICT_SPREAD.

:func:`plan` decides, without changing anything, which node each bundle goes to, or
returns ``None`` when the group cannot be placed now. It follows Ray's policies:

* ``STRICT_PACK``: every bundle on one node (``_soft_target_node_id`` tried first);
* ``PACK``: one node if any can hold the whole group, else as few nodes as possible
  (fill the nodes already used before opening another);
* ``STRICT_SPREAD``: every bundle on a different node;
* ``SPREAD``: different nodes while there are some that fit, then reuse the least used.

Bundles are placed largest first (GPU, then CPU, then the rest), nodes are tried in the
order they joined the cluster, and GPUs are checked per device, as Ray does. A bundle's
label selector (``bundle_label_selector``) restricts the nodes it may use. With
``use_totals=True`` the plan ignores current usage. Whether a group could *ever* be placed
(``NO_RESOURCES`` or ``INFEASIBLE``) is not this greedy planner's call but
:func:`reference_runner.placement_feasibility.never_placed`'s, the rule ``initialize_node``
applies on live clusters too (label selectors and GPU devices counted as here:
:func:`label_match` and :func:`full_gpu_capacity` are that module's).

Cost: one pass over the nodes per strategy in the common case (each node is checked
against the next bundle at most once, and a node that fits nothing is set aside), so a
512-bundle STRICT_SPREAD group on 10,000 nodes is placed in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from reference_runner.placement_feasibility import full_gpu_capacity, label_match

from .model import Bundle, Node
from .resources import GPU, Units, allocate_gpus, fits, gpu_fits, subtract

__all__ = ["Plan", "bundle_order", "full_gpu_capacity", "label_match", "plan"]

Plan = list[Node]


class _Scratch:
    """Tentative usage of nodes while a plan is built; real nodes are never touched."""

    def __init__(self, use_totals: bool) -> None:
        self.use_totals = use_totals
        self.state: dict[int, tuple[Units, list[int]]] = {}

    def view(self, node: Node) -> tuple[Mapping[str, int], list[int]]:
        state = self.state.get(node.index)
        if state is not None:
            return state
        if self.use_totals:
            return node.total, node.gpu_capacity
        return node.avail, node.gpus

    def can(self, node: Node, demand: Mapping[str, int]) -> bool:
        avail, gpus = self.view(node)
        if not fits(avail, demand):
            return False
        need_gpu = demand.get(GPU, 0)
        return need_gpu <= 0 or gpu_fits(gpus, need_gpu)

    def take(self, node: Node, demand: Mapping[str, int]) -> None:
        state = self.state.get(node.index)
        if state is None:
            avail, gpus = self.view(node)
            state = (dict(avail), list(gpus))
            self.state[node.index] = state
        subtract(state[0], demand)
        need_gpu = demand.get(GPU, 0)
        if need_gpu > 0:
            allocate_gpus(state[1], need_gpu)


def bundle_order(bundles: Sequence[Bundle]) -> list[int]:
    """Bundle indices, largest demand first (stable)."""

    def size(i: int) -> tuple[int, int, int]:
        d = bundles[i].demand
        return (
            d.get(GPU, 0),
            d.get("CPU", 0),
            sum(v for k, v in d.items() if k not in (GPU, "CPU")),
        )

    return sorted(range(len(bundles)), key=size, reverse=True)


def plan(
    bundles: Sequence[Bundle],
    strategy: str,
    nodes: Sequence[Node],
    *,
    use_totals: bool = False,
    soft_target_node_id: str | None = None,
) -> Plan | None:
    """The node for each bundle (by bundle index), or ``None`` if it cannot be placed."""
    alive = [n for n in nodes if n.alive]
    scratch = _Scratch(use_totals)
    order = bundle_order(bundles)
    if strategy == "STRICT_PACK":
        return _strict_pack(bundles, order, alive, scratch, soft_target_node_id)
    if strategy == "PACK":
        packed = _strict_pack(bundles, order, alive, _Scratch(use_totals), soft_target_node_id)
        return packed if packed is not None else _pack(bundles, order, alive, scratch)
    if strategy == "STRICT_SPREAD":
        return _spread(bundles, order, alive, scratch, strict=True)
    if strategy == "SPREAD":
        return _spread(bundles, order, alive, scratch, strict=False)
    raise ValueError(f"unknown placement strategy {strategy!r}")  # validated before


def _selected(node: Node, bundle: Bundle) -> bool:
    return bundle.selector is None or label_match(node.labels, bundle.selector)


def _strict_pack(
    bundles: Sequence[Bundle],
    order: Sequence[int],
    nodes: Sequence[Node],
    scratch: _Scratch,
    soft_target: str | None,
) -> Plan | None:
    total: Units = {}
    for b in bundles:
        for k, v in b.demand.items():
            total[k] = total.get(k, 0) + v
    candidates: Iterator[Node] = iter(nodes)
    if soft_target:
        preferred = [n for n in nodes if n.node_id == soft_target]
        candidates = iter([*preferred, *(n for n in nodes if n.node_id != soft_target)])
    for node in candidates:
        avail, _ = scratch.view(node)
        if not fits(avail, total):
            continue
        if not all(_selected(node, bundles[i]) for i in order):
            continue
        trial = _Scratch(scratch.use_totals)
        ok = True
        for i in order:
            if not trial.can(node, bundles[i].demand):
                ok = False
                break
            trial.take(node, bundles[i].demand)
        if ok:
            return [node] * len(bundles)
    return None


class _Cursor:
    """Hands out nodes not used yet by the group, walking the node list once.

    Nodes that did not fit a bundle are set aside and retried for later bundles, except
    when the next bundle asks exactly the same (set-aside nodes never change while a plan
    is built, so they cannot fit it either). That keeps a plan of many equal bundles at one
    pass over the nodes.
    """

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._fresh = iter(nodes)
        self._aside: list[Node] = []
        self._known_bad = 0
        self._last_key: object = None

    def first(self, bundle: Bundle, ok: Callable[[Node], bool]) -> Node | None:
        key = (tuple(sorted(bundle.demand.items())), tuple(sorted((bundle.selector or {}).items())))
        start = self._known_bad if key == self._last_key else 0
        self._last_key = key
        for j in range(start, len(self._aside)):
            if ok(self._aside[j]):
                self._known_bad = j
                return self._aside.pop(j)
        for node in self._fresh:
            if ok(node):
                self._known_bad = len(self._aside)
                return node
            self._aside.append(node)
        self._known_bad = len(self._aside)
        return None


def _pack(
    bundles: Sequence[Bundle], order: Sequence[int], nodes: Sequence[Node], scratch: _Scratch
) -> Plan | None:
    result: list[Node | None] = [None] * len(bundles)
    used: list[Node] = []
    cursor = _Cursor(nodes)
    for i in order:
        bundle = bundles[i]

        def ok(n: Node, bundle: Bundle = bundle) -> bool:
            return _selected(n, bundle) and scratch.can(n, bundle.demand)

        chosen = next((n for n in reversed(used) if ok(n)), None)
        if chosen is None:
            chosen = cursor.first(bundle, ok)
            if chosen is None:
                return None
            used.append(chosen)
        scratch.take(chosen, bundle.demand)
        result[i] = chosen
    return [n for n in result if n is not None]


def _spread(
    bundles: Sequence[Bundle],
    order: Sequence[int],
    nodes: Sequence[Node],
    scratch: _Scratch,
    *,
    strict: bool,
) -> Plan | None:
    result: list[Node | None] = [None] * len(bundles)
    cursor = _Cursor(nodes)
    used: dict[int, int] = {}  # node index -> bundles of this group on it
    by_index: dict[int, Node] = {}
    for i in order:
        bundle = bundles[i]

        def ok(n: Node, bundle: Bundle = bundle) -> bool:
            return _selected(n, bundle) and scratch.can(n, bundle.demand)

        chosen = cursor.first(bundle, ok)
        if chosen is None and not strict:
            for idx in sorted(used, key=lambda idx: used[idx]):
                if ok(by_index[idx]):
                    chosen = by_index[idx]
                    break
        if chosen is None:
            return None
        scratch.take(chosen, bundle.demand)
        used[chosen.index] = used.get(chosen.index, 0) + 1
        by_index[chosen.index] = chosen
        result[i] = chosen
    return [n for n in result if n is not None]
