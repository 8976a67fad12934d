"""Admitting the specs while Ray is imported: the two start-up costs side by side.

Admitting the specs at configure time (:mod:`.admission`) waits for the run's probe server:
a fresh interpreter that imports ``reference_runner`` before it serves, then forks a child
per spec that imports it. The test process needs Ray too, a little later, whatever the run
certifies: Ray's cloudpickle ships the callback (``loading.shippable``), the fake cluster
routes Ray's own functions, the live one connects with it.
:func:`admit_while_importing_ray` hands the server the probes first (they queue while it
starts, and it forks them before it imports Ray itself), imports Ray here meanwhile, and only
then waits for the answers, so the two interpreters do that work side by side instead of one
after the other. It changes what is imported when, never what runs or how.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .admission import start_admission

if TYPE_CHECKING:
    from .admission import Admission


def admit_while_importing_ray(
    specs: tuple[str, ...], *, cwd: str, import_paths: tuple[str, ...], import_limit_s: float
) -> dict[str, Admission]:
    """Admit or refuse every spec (:mod:`.admission`), with Ray imported in this process
    while the probes run."""
    pending = start_admission(
        specs, cwd=cwd, import_paths=import_paths, import_limit_s=import_limit_s
    )
    importlib.import_module("ray")
    return pending.result()
