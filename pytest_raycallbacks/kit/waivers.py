"""Waivers: accepting a known failure of one check, with a reason.

``--raycallbacks-waive CHECK=REASON`` (or ``CHECK@SPEC=REASON`` for one callback only).
A waived check that fails is reported as *waived* (the run can still certify); a waived
check that passes is reported as a *stale waiver*, so the waiver can be dropped.

Parsing imports nothing heavy; :func:`validate_ids` imports the catalogue to reject ids that
do not exist (a typo in a waiver must not silently waive nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

_FORM = re.compile(r"^(?P<check>[a-z]+\.[a-z0-9-]+)(?:@(?P<spec>[^=\s]+))?=(?P<reason>.*)$", re.S)


@dataclass(frozen=True)
class Waiver:
    """Accept a failure of ``check`` (for ``spec`` only, when given) because of ``reason``."""

    check: str
    reason: str
    spec: str | None = None

    def applies(self, check: str, spec: str) -> bool:
        return self.check == check and self.spec in (None, spec)

    def as_dict(self) -> dict[str, str | None]:
        return {"check": self.check, "spec": self.spec, "reason": self.reason}


def parse_waivers(values: Iterable[str]) -> tuple[Waiver, ...]:
    """Parse ``CHECK[@SPEC]=REASON`` values; :class:`pytest.UsageError` on a bad one."""
    waivers = []
    for raw in values:
        text = raw.strip()
        match = _FORM.match(text)
        if match is None:
            raise pytest.UsageError(
                f"--raycallbacks-waive {raw!r}: expected CHECK=REASON or CHECK@SPEC=REASON, "
                "e.g. --raycallbacks-waive 'merge.ownership=shares state with team X, ticket 42'"
            )
        reason = match["reason"].strip()
        if not reason:
            raise pytest.UsageError(
                f"--raycallbacks-waive {raw!r}: a waiver needs a reason after '=' (it is "
                "recorded in the certificate)"
            )
        waivers.append(Waiver(check=match["check"], reason=reason, spec=match["spec"]))
    return tuple(waivers)


def validate_ids(waivers: Iterable[Waiver]) -> None:
    """Reject waivers for checks the catalogue does not have (with the closest ids)."""
    from conformance import get_check

    for waiver in waivers:
        try:
            get_check(waiver.check)
        except KeyError as exc:
            raise pytest.UsageError(
                f"--raycallbacks-waive {waiver.check}=...: {exc.args[0]}"
            ) from None


def find_waiver(waivers: Iterable[Waiver], check: str, spec: str) -> Waiver | None:
    """The waiver that applies to ``check`` for ``spec`` (a spec-specific one first)."""
    matching = [w for w in waivers if w.applies(check, spec)]
    matching.sort(key=lambda w: w.spec is None)
    return matching[0] if matching else None
