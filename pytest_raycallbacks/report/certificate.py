"""The certificate (docs/design.md §The certificate): one JSON document per run, written
atomically.

Layout (``format`` ``raycallbacks-certificate/1``)::

    {"format", "created", "kit": {name, version, catalogue_version},
     "environment": {python, ray, pydantic, pytest, platform},
     "run": {exit_status, clusters_requested, gpus, ray_address, timeout_s, config, waivers},
     "callbacks": [{"spec", "module", "file", "sha256", "kind", "style", "applicable_checks",
                    "verdict", "clusters": [...],
                    "counts": {passed, failed, skipped, waived, not run},
                    "checks": [{"id", "category", "cluster", "rule", "outcome", "detail",
                                "failure": {expected, happened, fix} | null,
                                "waiver": reason | null, "stale_waiver", "duration_s"}],
                    "coverage": {...} | null}],
     "chain": {...}}   (only with --raycallbacks-chain)

``style`` is ``callback`` (a ``(phase, config, data)`` callback) or ``callbackbase`` (a
subclass of Ray's ``CallbackBase``, with ``kind`` ``ray CallbackBase subclass``);
``applicable_checks`` lists the ids of the checks that apply to that style, as collected.

Each callback's ``coverage`` is what the checks left unexercised in its code (see
:mod:`pytest_raycallbacks.coverage.report`; ``null`` when nothing was measured); ``chain`` is
the chain's verdict, collisions and order dependence (see
:meth:`pytest_raycallbacks.chain.plugin.ChainPlugin.certificate_entry`). The kit measures and
certifies those; this module only lays them out.

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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .results import Entry, Results, clusters_of, counts, verdict

if TYPE_CHECKING:
    from pytest_raycallbacks.kit.settings import KitSettings

FORMAT: Final = "raycallbacks-certificate/1"


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


def callback_entry(
    spec: str, entries: list[Entry], coverage: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The certificate's entry for one callback (``coverage``: see the module docstring)."""
    records = [e.record for e in entries if e.record]
    subject = next((r["subject"] for r in records if r.get("subject")), None)
    if subject is None:
        from conformance.subject import Subject

        subject = dict(Subject(spec).source)
    return {
        "spec": spec,
        "module": subject.get("module"),
        "file": subject.get("file"),
        "sha256": subject.get("sha256"),
        "kind": subject.get("kind"),
        "style": subject.get("style"),
        "applicable_checks": list(dict.fromkeys(e.plan.check for e in entries)),
        "verdict": verdict(entries),
        "clusters": clusters_of(entries),
        "counts": counts(entries),
        "checks": [
            {
                "id": e.plan.check,
                "category": e.plan.check.split(".", 1)[0],
                "cluster": e.plan.cluster,
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
        "coverage": dict(coverage) if coverage is not None else None,
    }


def build(
    settings: KitSettings,
    results: Results,
    exit_status: int,
    *,
    coverage: Mapping[str, Mapping[str, Any] | None] | None = None,
    chain: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole certificate (see the module docstring): ``coverage`` maps a spec to its
    callback coverage, ``chain`` is the chain's entry (given with ``--raycallbacks-chain``)."""
    from conformance import CATALOGUE_VERSION
    from pytest_raycallbacks import __version__

    coverage = coverage or {}
    document: dict[str, Any] = {
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
        "callbacks": [
            callback_entry(spec, results.for_spec(spec), coverage.get(spec))
            for spec in settings.specs
        ],
    }
    if chain is not None:
        document["chain"] = dict(chain)
    return document


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
