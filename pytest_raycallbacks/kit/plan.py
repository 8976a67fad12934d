"""The plan of a conformance run: which items it has, and what each item carries.

Items are planned from the settings alone (callback x check x cluster), so the controller of
a ``pytest-xdist`` run, which collects nothing itself, knows what should have run. Each item
carries its :class:`ItemPlan` under :data:`PLAN_KEY` and its record (a JSON-able dict: the
check, the callback, the cluster, then what happened) under :data:`RECORD_KEY`; the record
travels with the item's reports to :mod:`pytest_raycallbacks.report.results`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pytest


@dataclass(frozen=True)
class ItemPlan:
    """One conformance item: ``check`` for ``spec`` on ``cluster`` (``local``: no cluster,
    the check runs in the test process; ``fake`` or ``live``)."""

    check: str
    spec: str
    cluster: str

    @property
    def name(self) -> str:
        """The test name: ``merge.ownership[mymod.cb-fake]`` (-k sees all three parts)."""
        return f"{self.check}[{self.spec}-{self.cluster}]"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.spec, self.check, self.cluster)

    def record(self) -> dict[str, Any]:
        """The start of the item's record: what the item is (the check adds what happened)."""
        return {"check": self.check, "spec": self.spec, "cluster": self.cluster}

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> ItemPlan:
        """The plan a record (see :meth:`record`) was started from."""
        return cls(record["check"], record["spec"], record["cluster"])


PLAN_KEY: Final = pytest.StashKey[ItemPlan]()
RECORD_KEY: Final = pytest.StashKey[dict[str, Any]]()


def plan_items(
    specs: Iterable[str], clusters: tuple[str, ...], styles: Mapping[str, str] | None = None
) -> list[ItemPlan]:
    """Every item the settings ask for, in catalogue order per spec: the checks that apply
    to the spec's style (a ``(phase, config, data)`` callback or a Ray ``CallbackBase``
    subclass), on each cluster :meth:`conformance.Check.clusters_for` gives for the requested
    ones. ``styles`` gives each spec's style (the kit's configure-time probe,
    :mod:`.admission`, says it without importing the spec here); a spec missing from it is
    imported to tell, so its folder must be on ``sys.path``."""
    from conformance import checks_for, style_of

    known = styles or {}
    return [
        ItemPlan(check.id, spec, cluster)
        for spec in specs
        for check in checks_for(known[spec] if spec in known else style_of(spec))
        for cluster in check.clusters_for(clusters)
    ]
