"""The chain's verdict in words: the failing item's message and the summary's lines.

Everything reads the chain item's record (:meth:`conformance.chain.ChainReport.as_dict`):
``specs``, ``collisions``, ``order_dependent``, ``orders_tried``, ``differences``,
``collisions_in_other_orders``, ``given_order_error``, ``reproducible`` and ``fixes``.
"""

from __future__ import annotations

from typing import Any, Final

_SHOWN: Final = 6


def failure_lines(record: dict[str, Any]) -> list[str]:
    """Why the chain is rejected: reserved collisions, order dependence, fixes."""
    lines = [f"the chain {' -> '.join(record['specs'])} is rejected"]
    for collision in record["collisions"]:
        if collision["reserved"]:
            lines.append(f"  collision: {describe_collision(collision)}")
    if record["order_dependent"]:
        lines.append(f"  the outcome depends on the order ({len(record['orders_tried'])} tried):")
        lines += [f"    {describe_difference(d)}" for d in record["differences"][:_SHOWN]]
        for c in record.get("collisions_in_other_orders", [])[:_SHOWN]:
            lines.append(f"    in order {' -> '.join(c['order'])}: {describe_collision(c)}")
    if record.get("given_order_error"):
        lines.append(f"  the given order fails: {record['given_order_error']}")
    lines += [f"  fix: {fix}" for fix in record["fixes"]]
    return lines


def summary_lines(record: dict[str, Any]) -> list[tuple[str, dict[str, bool]]]:
    """The body of the chain's block in the terminal summary, as ``(line, markup)`` pairs."""
    collisions = record["collisions"]
    reserved = sum(1 for c in collisions if c["reserved"])
    dependent = "order-dependent" if record["order_dependent"] else "order-independent"
    if not record.get("reproducible", True):
        dependent = "not reproducible even in the same order (order dependence not judged)"
    lines: list[tuple[str, dict[str, bool]]] = [
        (
            f"    {len(collisions)} collision(s), {reserved} on reserved keys; outcome "
            f"{dependent} ({len(record['orders_tried'])} orders tried)",
            {},
        )
    ]
    for c in collisions:
        lines.append(
            (f"    collision: {describe_collision(c)}", {"red": True} if c["reserved"] else {})
        )
    for d in record["differences"][:_SHOWN]:
        lines.append((f"    {describe_difference(d)}", {}))
    for c in record.get("collisions_in_other_orders", [])[:_SHOWN]:
        order = " -> ".join(c["order"])
        lines.append((f"    in order {order}: {describe_collision(c)}", {}))
    if record.get("given_order_error"):
        lines.append((f"    the given order fails: {record['given_order_error']}", {}))
    lines += [(f"    fix: {fix}", {"yellow": True}) for fix in record["fixes"]]
    return lines


def describe_collision(c: dict[str, Any]) -> str:
    """One collision: who replaced, overwrote or removed which key, in which phase."""
    what = {"replaced": "replaced whole", "overwritten": "overwrote", "removed": "removed"}
    lost = f" (lost: {', '.join(c['lost'])})" if c["lost"] else ""
    return (
        f"{c['second']['callback']} {what[c['kind']]} {c['key']!r} in "
        f"{c['second']['phase']!r}: {c['first']['callback']} had set {c['first']['value']} in "
        f"{c['first']['phase']!r}, now {c['second']['value']}{lost}"
    )


def describe_difference(d: dict[str, Any]) -> str:
    """One difference between another order's outcome and the given order's."""
    return (
        f"order {' -> '.join(d['order'])}: {d['field']} is {d['this_order']} "
        f"(given order: {d['given']})"
    )
