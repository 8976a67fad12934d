"""Certifying several callbacks as one chain (``--raycallbacks-chain``).

:func:`certify_chain` runs the chain in the given order (collisions are read from that run),
then in other orders (every permutation up to :data:`ALL_ORDERS_UP_TO` callbacks, else
:data:`SAMPLED_ORDERS` orders, always including the reverse, drawn with a seed made from the
labels, so a rerun tries the same orders), and compares the outcomes
(:func:`conformance.chain_run.outcome_of`). When an order differs, the given order is run
once more: if that differs too, the outcome is not reproducible at all and no order
dependence is claimed.

Collisions that only happen in other orders are reported apart (they explain an order
dependence). The verdict (:class:`ChainReport`): ``rejected`` when a callback replaced a
reserved key another one had set in the given order, when the chain fails in the given
order (a chain that hangs there is not run in other orders), or when the outcome depends on
the order; ``certified`` otherwise
(overwrites of non-reserved keys are reported, and reject only through the order
dependence they usually cause).
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reference_runner import CallbackTimeoutError, LLMConfig

from .chain_run import ChainRun, Collision, run_chain, short
from .cluster_api import Cluster

ALL_ORDERS_UP_TO: Final = 4
SAMPLED_ORDERS: Final = 12
_SHOWN_DIFFERENCES: Final = 20


@dataclass(frozen=True)
class Difference:
    """In ``order`` the chain's ``field`` is ``value``; in the given order it is ``given``."""

    order: tuple[str, ...]
    field: str
    given: str
    value: str

    def describe(self) -> str:
        return (
            f"order {' -> '.join(self.order)}: {self.field} is {self.value} "
            f"(given order: {self.given})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": list(self.order),
            "field": self.field,
            "given": self.given,
            "this_order": self.value,
        }


@dataclass
class ChainReport:
    """What :func:`certify_chain` found (see the module docstring)."""

    labels: tuple[str, ...]
    collisions: list[Collision]
    orders_tried: list[tuple[str, ...]]
    differences: list[Difference] = field(default_factory=list)
    reproducible: bool = True
    given_error: str | None = None
    other_collisions: list[tuple[tuple[str, ...], Collision]] = field(default_factory=list)

    @property
    def order_dependent(self) -> bool:
        return self.reproducible and bool(self.differences)

    @property
    def reserved_collisions(self) -> list[Collision]:
        return [c for c in self.collisions if c.reserved]

    @property
    def verdict(self) -> str:
        rejected = self.reserved_collisions or self.order_dependent or self.given_error
        return "rejected" if rejected else "certified"

    def fixes(self) -> list[str]:
        """How to fix what rejects the chain, one line each."""
        fixes: list[str] = []
        if self.given_error:
            fixes.append(
                f"the chain fails in the given order ({self.given_error}); see the checks of "
                "each callback, and the collisions"
            )
        reserved = [*self.reserved_collisions, *(c for _, c in self.other_collisions if c.reserved)]
        for key in dict.fromkeys(c.key for c in reserved):
            if key in ("extra_init_kwargs", "runtime_env"):
                fixes.append(
                    f"merge {key!r} instead of replacing it: return "
                    f'{{"{key}": {{**data.get("{key}", {{}}), ...}}}}'
                )
            else:
                fixes.append(
                    f"let one callback of the chain own {key!r}, or have the others read "
                    f'data.get("{key}") and keep what is there'
                )
        if self.order_dependent:
            fixes.append(
                "make the callbacks commute (merge dicts, never overwrite each other's keys), "
                "or, if one order is required, certify each of them alone and document it"
            )
        return fixes

    def as_dict(self) -> dict[str, Any]:
        return {
            "specs": list(self.labels),
            "verdict": self.verdict,
            "collisions": [c.as_dict() for c in self.collisions],
            "order_dependent": self.order_dependent,
            "reproducible": self.reproducible,
            "orders_tried": [list(o) for o in self.orders_tried],
            "differences": [d.as_dict() for d in self.differences[:_SHOWN_DIFFERENCES]],
            "given_order_error": self.given_error,
            "collisions_in_other_orders": [
                {"order": list(order), **c.as_dict()} for order, c in self.other_collisions
            ],
            "fixes": self.fixes(),
        }


def orders(labels: Sequence[str]) -> list[tuple[int, ...]]:
    """The orders to try besides the given one, as index tuples (see the module
    docstring)."""
    n = len(labels)
    given = tuple(range(n))
    if n <= ALL_ORDERS_UP_TO:
        return [p for p in itertools.permutations(given) if p != given]
    chosen = [tuple(reversed(given))]
    rng = random.Random(zlib.crc32("\0".join(labels).encode()))
    wanted = min(SAMPLED_ORDERS, math.factorial(n) - 1)
    while len(chosen) < wanted:
        order = tuple(rng.sample(given, n))
        if order != given and order not in chosen:
            chosen.append(order)
    return chosen


def certify_chain(
    cluster: Cluster,
    members: Sequence[tuple[str, Callable[[], Callable[..., Any]]]],
    base_config: LLMConfig,
    *,
    timeout_s: float,
    placement_timeout_s: float,
) -> ChainReport:
    """Run the chain of ``members`` (``(label, make fresh callback)``) in the given order
    and in other orders on ``cluster`` and judge it (see the module docstring)."""
    labels = tuple(label for label, _ in members)

    def run(order: Sequence[int]) -> ChainRun:
        with cluster.scope(None) as scope:
            return run_chain(
                scope,
                [(members[i][0], members[i][1]()) for i in order],
                base_config,
                timeout_s=timeout_s,
                placement_timeout_s=placement_timeout_s,
            )

    given = run(range(len(members)))
    report = ChainReport(
        labels=labels,
        collisions=given.collisions,
        orders_tried=[labels],
        given_error=None if given.error is None else f"{type(given.error).__name__}: {given.error}",
    )
    if isinstance(given.error, CallbackTimeoutError):
        return report  # every other order would wait out the timeout again
    for order in orders(labels):
        other = run(order)
        report.orders_tried.append(other.labels)
        report.differences.extend(compare(given.outcome, other.outcome, other.labels))
        seen = {(c.key, c.first, c.second) for c in report.collisions}
        seen |= {(c.key, c.first, c.second) for _, c in report.other_collisions}
        for collision in other.collisions:
            if (collision.key, collision.first, collision.second) not in seen:
                report.other_collisions.append((other.labels, collision))
                seen.add((collision.key, collision.first, collision.second))
    if report.differences:
        again = run(range(len(members)))
        report.reproducible = not compare(given.outcome, again.outcome, labels)
    return report


def compare(
    given: dict[str, Any], other: dict[str, Any], order: tuple[str, ...]
) -> list[Difference]:
    """Where ``other`` differs from ``given``, field by field (``data`` key by key)."""
    differences: list[Difference] = []
    for name in dict.fromkeys([*given, *other]):
        a, b = given.get(name), other.get(name)
        if name == "data" and isinstance(a, dict) and isinstance(b, dict):
            for key in dict.fromkeys([*a, *b]):
                if not _same(a.get(key, _NOT_SET), b.get(key, _NOT_SET)):
                    differences.append(
                        Difference(
                            order,
                            f"data[{key!r}]",
                            _show(a.get(key, _NOT_SET)),
                            _show(b.get(key, _NOT_SET)),
                        )
                    )
        elif not _same(a, b):
            differences.append(Difference(order, name, _show(a), _show(b)))
    return differences


#: How a difference shows a ``data`` key one of the two orders did not set.
_NOT_SET: Final = "<not set>"


def _show(value: Any) -> str:
    return value if value == _NOT_SET else short(value)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
