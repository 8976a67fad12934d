"""Admitting the specs at configure time: a bounded import probe before any import here.

The kit must know each spec's style (which checks apply) when it plans the run, and the only
way to know is to import the spec. Importing it in the test process is unbounded: a module
that blocks at import (a network call, a lock, ``input()``) or ends the process
(``os._exit``) would take the run down before any check ran. So :func:`start_admission`
resolves every spec in a fresh interpreter first (:func:`conformance.probe.import_probe`:
all specs at once, each bounded by the import limit, on the run's probe server), and
:meth:`PendingAdmission.result` says each one's style.

A spec whose probe overran the import limit, or whose interpreter ended while importing, is
*refused*: it gets a :class:`~conformance.bounds.Halt` (never imported in the test process;
``loading.importable`` and, for a timeout, ``loading.import-time`` fail with the cause, its
other checks are not run). Any other outcome (imported, or raised an ordinary exception,
which importing it here would raise too) admits it: the test process imports it when its
first check needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.bounds import Halt
    from conformance.probe import PendingProbe, ProbeResult


@dataclass(frozen=True)
class Admission:
    """What the configure-time probe found for one spec: its ``style`` (``callback`` when it
    did not resolve), the ``halt`` that refuses it (``None``: admitted), the probe itself."""

    spec: str
    style: str
    halt: Halt | None
    probe: ProbeResult


@dataclass(frozen=True)
class PendingAdmission:
    """The probes of :func:`start_admission`, running; :meth:`result` waits for them."""

    probes: Mapping[str, PendingProbe]
    import_limit_s: float

    def result(self) -> dict[str, Admission]:
        """Admit or refuse each spec once its probe answered (see the module docstring)."""
        return {
            spec: _admission(spec, probe.result(), self.import_limit_s)
            for spec, probe in self.probes.items()
        }


def start_admission(
    specs: tuple[str, ...], *, cwd: str, import_paths: tuple[str, ...], import_limit_s: float
) -> PendingAdmission:
    """Hand every spec's probe to the probe server (starting it) and return at once: the
    probes queue while it starts, and it forks them before anything else."""
    from conformance.probe import import_probe

    return PendingAdmission(
        probes={
            spec: import_probe(
                spec, cwd=cwd, import_paths=import_paths, import_limit_s=import_limit_s
            )
            for spec in specs
        },
        import_limit_s=import_limit_s,
    )


def _admission(spec: str, result: ProbeResult, import_limit_s: float) -> Admission:
    from conformance.bounds import import_refused
    from conformance.probe import exit_words
    from conformance.registry import CALLBACK
    from reference_runner.loading import module_guess

    module = result.module or module_guess(spec)
    halt = None
    if result.overran in ("import", "load"):
        halt = import_refused(spec, module, import_limit_s, died=None)
    elif result.died_in is not None:
        halt = import_refused(spec, module, import_limit_s, died=exit_words(result.exit_status))
    return Admission(spec=spec, style=result.style or CALLBACK, halt=halt, probe=result)
