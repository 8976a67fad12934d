"""The check registry: every conformance check is a documented rule.

A check is a function ``(ctx: CheckContext) -> str | None`` registered with :func:`check`.
It returns ``None`` (passed) or a short note (passed, with something worth recording, such
as "not applicable: the spec is a function"), and raises
:class:`~conformance.failure.CheckFailed` when the rule is broken.

Each check declares what it *runs on* (:data:`RUNS_ON`, docs/design.md §Clusters):

* ``"driver"``: in the test process only, on no cluster (loading checks);
* ``"fake"``: behaviour checks; they drive the callback through ``initialize_node`` on the
  in-memory fake cluster, which can inject faults and see every call;
* ``"each-cluster"``: once per requested cluster (``fake``, ``live``); ``clusters`` narrows
  that (``cluster.in-worker`` only means something on a live cluster).

:meth:`Check.clusters_for` turns that into the clusters one run of the kit uses, named
``"local"`` (no cluster: the driver), ``"fake"`` or ``"live"``.

Each check also declares the *styles* of callback it applies to (:data:`STYLES`):
``"callback"`` (a ``(phase, config, data)`` callable, this project's contract) and
``"callbackbase"`` (a subclass of Ray's ``CallbackBase``, run by Ray's own code:
:mod:`conformance.ray_harness`). A check is collected for a spec only when it applies to the
spec's style.

Ids are stable: they name waivers and certificate entries, so never rename one; retire it
and add a new id instead (and bump :data:`CATALOGUE_VERSION`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from .context import CheckContext

RunsOn = Literal["driver", "fake", "each-cluster"]
CheckFunction = Callable[["CheckContext"], "str | None"]

#: The categories, in the order the catalogue lists them.
CATEGORIES: Final = (
    "loading",
    "phases",
    "merge",
    "errors",
    "process",
    "cluster",
    "callbackbase",
)
#: The styles of callback a check can apply to (see the module docstring).
CALLBACK: Final = "callback"
CALLBACKBASE: Final = "callbackbase"
STYLES: Final = (CALLBACK, CALLBACKBASE)
#: What a check can run on (see the module docstring).
RUNS_ON: Final = ("driver", "fake", "each-cluster")
#: Every cluster an ``"each-cluster"`` check can run on.
CLUSTERS: Final = ("fake", "live")
#: The name :meth:`Check.clusters_for` gives the driver (no cluster).
LOCAL: Final = "local"

_ID = re.compile(r"^[a-z]+\.[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Check:
    """One rule of the catalogue.

    ``id`` is ``<category>.<name>``; ``rule`` is the one-line rule a callback must follow;
    ``why`` says why it matters on a Ray cluster; ``runs_on`` and ``clusters`` say what it
    runs on (see the module docstring); ``needs_callback`` is false for the checks that work
    on the spec alone (they still run when the callback cannot be loaded); ``styles`` the
    styles of callback it applies to (both by default).
    """

    id: str
    category: str
    rule: str
    why: str
    function: CheckFunction
    runs_on: RunsOn = "fake"
    clusters: tuple[str, ...] = CLUSTERS
    needs_callback: bool = True
    fresh_process: bool = False
    styles: tuple[str, ...] = STYLES

    def applies_to(self, style: str) -> bool:
        """Whether this check judges callbacks of ``style`` (one of :data:`STYLES`)."""
        return style in self.styles

    def clusters_for(self, requested: tuple[str, ...]) -> tuple[str, ...]:
        """The clusters this check runs on given the ``requested`` ones: ``("local",)``
        (the driver, no cluster), ``("fake",)`` for behaviour checks, or the requested
        clusters it supports, in their order."""
        if self.runs_on == "driver":
            return (LOCAL,)
        if self.runs_on == "fake":
            return ("fake",)
        return tuple(c for c in requested if c in self.clusters)


_REGISTRY: dict[str, Check] = {}


def check(
    id: str,
    *,
    rule: str,
    why: str,
    runs_on: RunsOn = "fake",
    clusters: tuple[str, ...] = CLUSTERS,
    needs_callback: bool = True,
    fresh_process: bool = False,
    styles: tuple[str, ...] = STYLES,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``id`` (see :class:`Check`)."""
    if not _ID.match(id):
        raise ValueError(f"check id {id!r} must look like 'category.name-in-kebab-case'")
    category = id.split(".", 1)[0]
    if category not in CATEGORIES:
        raise ValueError(f"check {id!r}: unknown category {category!r}; one of {CATEGORIES}")
    if "\n" in rule or not rule.strip():
        raise ValueError(f"check {id!r}: the rule must be one non-empty line")
    if runs_on not in RUNS_ON:
        raise ValueError(f"check {id!r}: runs_on={runs_on!r} must be one of {RUNS_ON}")
    if not styles or set(styles) - set(STYLES):
        raise ValueError(f"check {id!r}: styles {styles!r} must be a non-empty subset of {STYLES}")

    def register(function: CheckFunction) -> CheckFunction:
        if id in _REGISTRY:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(
            id=id,
            category=category,
            rule=rule,
            why=" ".join(why.split()),
            function=function,
            runs_on=runs_on,
            clusters=clusters,
            needs_callback=needs_callback,
            fresh_process=fresh_process,
            styles=tuple(s for s in STYLES if s in styles),
        )
        return function

    return register


def registered() -> tuple[Check, ...]:
    """Every registered check, by category order, then registration order."""
    order = {category: i for i, category in enumerate(CATEGORIES)}
    return tuple(sorted(_REGISTRY.values(), key=lambda c: order[c.category]))
