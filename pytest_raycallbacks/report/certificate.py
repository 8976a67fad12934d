"""The certificate (DESIGN §4): one JSON document per run, written atomically.

Layout (``format`` ``raycallbacks-certificate/1``)::

    {"format", "created", "kit": {name, version, catalogue_version},
     "environment": {python, ray, pydantic, pytest, platform},
     "run": {exit_status, clusters_requested, gpus, ray_address, timeout_s, config, waivers},
     "callbacks": [{"spec", "module", "file", "sha256", "kind", "style", "applicable_checks",
                    "verdict", "clusters": [...],
                    "counts": {passed, failed, skipped, waived, not run},
                    "checks": [{"id", "category", "cluster", "rule", "outcome", "detail",
                                "failure": {expected, happened, fix} | null,
                                "waiver": reason | null, "stale_waiver", "duration_s"}]}]}

``style`` is ``callback`` (a ``(phase, config, data)`` callback) or ``callbackbase`` (a
subclass of Ray's ``CallbackBase``, with ``kind`` ``ray CallbackBase subclass``);
``applicable_checks`` lists the ids of the checks that apply to that style, as collected.

:func:`pytest_raycallbacks.kit_extras.amend_certificate` adds each callback's ``coverage``
(see :mod:`.coverage_report`) and, with ``--raycallbacks-chain``, a top-level ``chain``
object (see :mod:`.chain_suite`).

It is written to a temporary file in the target folder, flushed to disk, then renamed over
the target, so a reader never sees half a certificate; it is written also when checks fail
or the run is interrupted (then the verdict says ``rejected`` or ``incomplete``).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from .results import Entry, Results, verdict
from .settings import KitSettings

FORMAT: Final = "raycallbacks-certificate/1"
_COUNTED: Final = ("passed", "failed", "skipped", "waived", "not run")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions of what the verdict depends on (read from metadata: Ray is not imported)."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "ray": _version("ray"),
        "pydantic": _version("pydantic"),
        "pytest": _version("pytest"),
        "platform": platform.platform(),
    }


def callback_entry(spec: str, entries: list[Entry]) -> dict[str, Any]:
    """The certificate's entry for one callback."""
    records = [e.record for e in entries if e.record]
    subject = next((r["subject"] for r in records if r.get("subject")), None)
    if subject is None:
        from conformance.subject import Subject

        subject = dict(Subject(spec).source)
    clusters: dict[str, dict[str, Any]] = {}
    for record in records:
        host = record.get("host")
        if host:
            clusters.setdefault(str(host.get("name")), host)
    counts = dict.fromkeys(_COUNTED, 0)
    for entry in entries:
        counts[entry.outcome] += 1
    return {
        "spec": spec,
        "module": subject.get("module"),
        "file": subject.get("file"),
        "sha256": subject.get("sha256"),
        "kind": subject.get("kind"),
        "style": subject.get("style"),
        "applicable_checks": list(dict.fromkeys(e.plan.check for e in entries)),
        "verdict": verdict(entries),
        "clusters": list(clusters.values()),
        "counts": counts,
        "checks": [
            {
                "id": e.plan.check,
                "category": e.plan.check.split(".", 1)[0],
                "cluster": e.plan.where,
                "rule": (e.record or {}).get("rule"),
                "outcome": e.outcome,
                "detail": e.detail,
                "failure": e.failure,
                "waiver": e.waiver,
                "stale_waiver": e.stale_waiver,
                "duration_s": round(e.duration_s, 4),
            }
            for e in entries
        ],
    }


def build(settings: KitSettings, results: Results, exit_status: int) -> dict[str, Any]:
    """The whole certificate (see the module docstring)."""
    from conformance import CATALOGUE_VERSION

    from . import __version__

    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kit": {
            "name": "pytest-raycallbacks",
            "version": __version__,
            "catalogue_version": CATALOGUE_VERSION,
        },
        "environment": environment(),
        "run": {
            "exit_status": int(exit_status),
            "clusters_requested": list(settings.clusters),
            "gpus": settings.gpus,
            "ray_address": settings.ray_address,
            "timeout_s": settings.timeout_s,
            "config": settings.config_path or "built-in (bundled tiny model)",
            "waivers": [w.as_dict() for w in settings.waivers],
        },
        "callbacks": [callback_entry(spec, results.for_spec(spec)) for spec in settings.specs],
    }


def write_atomically(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` so that readers see the old or the new file,
    never a partial one."""
    target = Path(path)
    text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
