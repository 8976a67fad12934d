"""One run of a chain of callbacks through ``initialize_node``: its outcome and collisions.

:func:`run_chain` runs the real :func:`reference_runner.initialize_node` in a cluster scope with
the given callbacks as one ``LLMConfig.callbacks`` list (each wrapped in a transparent
:class:`~conformance.recorder.Recorder`), and returns a :class:`ChainRun`:

* ``outcome``: what the chain produced, in comparable form (:func:`canonical`):
  ``extra_init_kwargs``, ``runtime_env``, the placement group's bundles and strategy, the
  download choice per node (the local node, then the workers' choices, sorted), and every
  other key of the final ``data`` (:data:`COMPARED_APART` are already compared in the
  fields above); or ``{"error": <type name>}`` when it failed;
* ``collisions``: every key one callback set (returned, or wrote in place) or removed after
  *another* callback had set it, with both values and phases. A dict written over a dict
  that keeps every item of the earlier one is a merge, not a collision; writing the value
  that is already there is not one either. The system's own writes (the download defaults)
  may be overridden freely.
"""

from __future__ import annotations

import contextlib
import enum
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reference_runner import InitializeNodeOutput, LLMConfig
from reference_runner.reserved import (
    CALLBACK_RESERVED_KEYS,
    DOWNLOAD_RESULT,
    EXTRA_INIT_KWARGS,
    PLACEMENT_GROUP,
    RUNTIME_ENV,
)

from .cluster_api import ClusterScope
from .harness import config_with, initialize_bounded
from .recorder import Call, Recorder
from .runs import written

#: Keys of the final ``data`` the outcome compares in fields of their own (the download
#: choice per node, the placement group's bundles and strategy, the engine's keyword
#: arguments, the runtime env), so not again among its ``data``.
COMPARED_APART: Final = frozenset(
    {DOWNLOAD_RESULT, PLACEMENT_GROUP, EXTRA_INIT_KWARGS, RUNTIME_ENV}
)
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxdict = 6


def short(value: Any) -> str:
    """A truncated ``repr``."""
    try:
        return _SHORT.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


@dataclass(frozen=True)
class Collision:
    """``second`` overwrote (or removed: ``kind == "removed"``) ``key`` that ``first`` set.

    ``kind`` is ``replaced`` (a reserved key's value replaced whole: what the earlier
    callback put there is lost for the node), ``overwritten`` (another key) or ``removed``;
    ``lost`` lists the items of a dict value the second callback dropped or changed.
    """

    key: str
    kind: str
    first: str
    first_phase: str
    first_value: str
    second: str
    second_phase: str
    second_value: str
    lost: tuple[str, ...] = ()

    @property
    def reserved(self) -> bool:
        return self.key in CALLBACK_RESERVED_KEYS

    def describe(self) -> str:
        what = {"replaced": "replaced whole", "overwritten": "overwrote", "removed": "removed"}
        lost = f" (lost: {', '.join(self.lost)})" if self.lost else ""
        return (
            f"{self.second} {what[self.kind]} {self.key!r} in {self.second_phase!r}: "
            f"{self.first} had set {self.first_value} in {self.first_phase!r}, now "
            f"{self.second_value}{lost}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "reserved": self.reserved,
            "first": {"callback": self.first, "phase": self.first_phase, "value": self.first_value},
            "second": {
                "callback": self.second,
                "phase": self.second_phase,
                "value": self.second_value,
            },
            "lost": list(self.lost),
        }


@dataclass
class ChainRun:
    """One order of the chain: ``labels`` in the order they ran, and what came of it."""

    labels: tuple[str, ...]
    outcome: dict[str, Any]
    collisions: list[Collision] = field(default_factory=list)
    error: BaseException | None = None


def canonical(value: Any) -> Any:
    """``value`` in a form that compares by content across runs: mappings and sequences
    element-wise, enums by name, objects with their own ``==`` as themselves, other objects
    by type (their identity differs from run to run)."""
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    if getattr(type(value), "__eq__", None) is not getattr(object, "__eq__", None):
        return value
    return f"<{type(value).__qualname__} object>"


def outcome_of(output: InitializeNodeOutput | None, error: BaseException | None) -> dict[str, Any]:
    """The comparable outcome of one run (see the module docstring)."""
    if error is not None or output is None:
        return {"error": type(error).__name__ if error is not None else "no output"}
    import ray

    group = output.placement_group
    strategy = None
    with contextlib.suppress(Exception):
        strategy = ray.util.placement_group_table(group).get("strategy")
    result = output.download_result
    local: Any = None
    workers: list[str] = []
    if result is not None:
        for node_id, download in result.nodes.items():
            if node_id == result.local_node_id:
                local = canonical(download.downloadable)
            else:
                workers.append(str(canonical(download.downloadable)))
    return {
        EXTRA_INIT_KWARGS: canonical(output.extra_init_kwargs),
        RUNTIME_ENV: canonical(output.runtime_env),
        "placement_group": {
            "bundles": canonical(getattr(group, "bundle_specs", None)),
            "strategy": strategy,
        },
        "downloads": {"local": local, "workers": sorted(workers)},
        "data": {
            k: canonical(v) for k, v in sorted(output.data.items()) if k not in COMPARED_APART
        },
    }


def run_chain(
    scope: ClusterScope,
    callbacks: Sequence[tuple[str, Callable[..., Any]]],
    base_config: LLMConfig,
    *,
    timeout_s: float,
    placement_timeout_s: float,
) -> ChainRun:
    """Run ``callbacks`` (``(label, callback)`` pairs, in order) as one chain in ``scope``."""
    recorders = [(label, Recorder(callback)) for label, callback in callbacks]
    config = config_with(base_config, [r.wrapper for _, r in recorders])
    output: InitializeNodeOutput | None = None
    error: BaseException | None = None
    try:
        output = initialize_bounded(config, timeout_s, placement_timeout_s)
    except Exception as exc:
        error = exc
    outcome = outcome_of(output, error)
    if output is not None and output.placement_group is not None:
        import ray

        with contextlib.suppress(Exception):
            ray.util.remove_placement_group(output.placement_group)
    return ChainRun(
        labels=tuple(label for label, _ in callbacks),
        outcome=outcome,
        collisions=collisions([(label, r.calls) for label, r in recorders]),
        error=error,
    )


def collisions(calls_by_callback: Sequence[tuple[str, Sequence[Call]]]) -> list[Collision]:
    """Collisions in the calls of a chain (see the module docstring), in the order they
    happened."""
    timeline = sorted(
        ((call.started, label, call) for label, calls in calls_by_callback for call in calls),
        key=lambda item: item[0],
    )
    owner: dict[str, tuple[str, str, Any]] = {}  # key -> (callback, phase, value)
    found: list[Collision] = []
    for _, label, call in timeline:
        for key in list(owner):  # a value changed between calls: the system wrote it
            if key in call.before and call.before[key] is not owner[key][2]:
                del owner[key]
        values = written(call)
        for key, value in values.items():
            previous = owner.get(key)
            if previous is not None and previous[0] != label:
                collision = _collision(key, previous, label, call.phase, value)
                if collision is not None:
                    found.append(collision)
            owner[key] = (label, call.phase, value)
        for key in call.in_place()[2]:
            previous = owner.pop(key, None)
            if previous is not None and previous[0] != label:
                found.append(
                    Collision(
                        key,
                        "removed",
                        previous[0],
                        previous[1],
                        short(previous[2]),
                        label,
                        call.phase,
                        "<removed>",
                    )
                )
    return found


def _collision(
    key: str, previous: tuple[str, str, Any], label: str, phase: str, value: Any
) -> Collision | None:
    first, first_phase, old = previous
    if value is old or _equal(canonical(value), canonical(old)):
        return None
    lost: tuple[str, ...] = ()
    if isinstance(old, Mapping) and isinstance(value, Mapping):
        lost = tuple(
            str(k)
            for k in old
            if k not in value or not _equal(canonical(value[k]), canonical(old[k]))
        )
        if not lost:
            return None  # a merge: every earlier item is kept
    kind = "replaced" if key in CALLBACK_RESERVED_KEYS else "overwritten"
    return Collision(key, kind, first, first_phase, short(old), label, phase, short(value), lost)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
