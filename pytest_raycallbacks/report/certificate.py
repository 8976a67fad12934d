"""The certificate (docs/design.md §The certificate): one JSON document per run, written
atomically.

Layout (``format`` ``raycallbacks-certificate/1``)::

    {"format", "created", "kit": {name, version, catalogue_version},
     "environment": {python, ray, pydantic, pytest, platform},
     "run": {exit_status, clusters_requested, gpus, ray_address, timeout_s, config, waivers,
             s3_buckets, bound_s, bound_parts},
     "callbacks": [{"spec", "module", "file", "sha256", "sources", "kind", "style",
                    "applicable_checks",
                    ["callback_kwargs", "callback_kwargs_sha256",]  (CallbackBase only)
                    "verdict", "clusters": [...],
                    "counts": {passed, failed, skipped, waived, not run},
                    "checks": [{"id", "category", "cluster", "rule", "outcome", "detail",
                                "failure": {expected, happened, fix} | null, "advice",
                                "waiver": reason | null, "stale_waiver", "duration_s"}],
                    "coverage": {...} | null}],
     "chain": {...}}   (only with --raycallbacks-chain)

``style`` is ``callback`` (a ``(phase, config, data)`` callback) or ``callbackbase`` (a
subclass of Ray's ``CallbackBase``, with ``kind`` ``ray CallbackBase subclass``);
``applicable_checks`` lists the ids of the checks that apply to that style, as collected.
``sources`` is the callback's code beyond its module: ``{"files": [{"module", "path",
"sha256", "imports"}], "distributions": {name: version}}``, every own source file importing
and running it loaded and the installed distributions the rest came from
(:mod:`pytest_raycallbacks.report.sources`; ``raycallbacks verify`` checks each).
A ``CallbackBase`` subclass also records the ``callback_kwargs`` it was built with
(``--raycallbacks-callback-kwargs``; ``{}`` for none), values of secret-looking keys masked,
and their hash, which ``raycallbacks verify`` compares with the deploy's
(:mod:`pytest_raycallbacks.callback_kwargs`). ``run.s3_buckets`` maps each
``--raycallbacks-s3`` bucket to its folder. ``run.bound_s`` is the worst case the run could
take, stated and enforced by the kit, and ``run.bound_parts`` what it is made of
(:mod:`pytest_raycallbacks.kit.run_bound`).

Each callback's ``coverage`` is what the checks left unexercised in its code (see
:mod:`pytest_raycallbacks.coverage.report`; ``null`` when nothing was measured); ``chain`` is
the chain's verdict, collisions and order dependence (see
:meth:`pytest_raycallbacks.chain.plugin.ChainPlugin.certificate_entry`). The kit measures and
certifies those; this module only lays them out.

It is written to a temporary file in the target folder, flushed to disk, then renamed over
the target, so a reader never sees half a certificate (with the permissions any new file
gets under the user's umask, so CI can archive and read it); it is written also when checks fail
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

from reference_runner.ray_llm import planned_stand_ins

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
    spec: str,
    entries: list[Entry],
    coverage: Mapping[str, Any] | None = None,
    callback_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The certificate's entry for one callback (``coverage``, ``callback_kwargs``: see the
    module docstring)."""
    records = [e.record for e in entries if e.record]
    subject = next((r["subject"] for r in records if r.get("subject")), None)
    if subject is None:  # no check of it reported: locate its file without importing it
        from conformance.subject import source_without_import

        subject = source_without_import(spec)
    kwargs_record: dict[str, Any] = {}
    if subject.get("style") == "callbackbase" or callback_kwargs:
        from pytest_raycallbacks.callback_kwargs import certificate_record

        kwargs_record = certificate_record(callback_kwargs or {})
    return {
        "spec": spec,
        "module": subject.get("module"),
        "file": subject.get("file"),
        "sha256": subject.get("sha256"),
        "sources": _sources(subject.get("module"), records),
        "kind": subject.get("kind"),
        "style": subject.get("style"),
        **kwargs_record,
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
                "advice": (e.record or {}).get("advice") if e.outcome == "passed" else None,
                "inconclusive": (e.record or {}).get("inconclusive"),
                "waiver": e.waiver,
                "stale_waiver": e.stale_waiver,
                "duration_s": round(e.duration_s, 4),
            }
            for e in entries
        ],
        "coverage": dict(coverage) if coverage is not None else None,
    }


def _sources(module: str | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The callback's own files and distributions, from what its items saw loaded."""
    from .sources import callback_sources

    loaded: dict[str, str | None] = {}
    for record in records:
        loaded.update(record.get("loaded") or {})
    return callback_sources(module, loaded)


def build(
    settings: KitSettings,
    results: Results,
    exit_status: int,
    *,
    coverage: Mapping[str, Mapping[str, Any] | None] | None = None,
    chain: Mapping[str, Any] | None = None,
    bound: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole certificate (see the module docstring): ``coverage`` maps a spec to its
    callback coverage, ``chain`` is the chain's entry (given with ``--raycallbacks-chain``),
    ``bound`` the run's stated worst case (``{"bound_s", "parts"}``)."""
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
            "s3_buckets": dict(settings.s3_buckets),
            "bound_s": (bound or {}).get("bound_s"),
            "bound_parts": dict((bound or {}).get("parts") or {}),
            "serve_configs": [sc.record() for sc in settings.serve_configs],
            "model_source": settings.model_source,
            "ray_stand_ins": list(planned_stand_ins()),
        },
        "callbacks": [
            {
                **callback_entry(
                    spec,
                    results.for_spec(spec),
                    coverage.get(spec),
                    settings.kwargs_of(spec),
                ),
                **_deployment(settings, spec),
            }
            for spec in settings.specs
        ],
    }
    if chain is not None:
        document["chain"] = dict(chain)
    return document


def _deployment(settings: KitSettings, spec: str) -> dict[str, Any]:
    """``{"deployment": {entry, "replaced"}}`` for a spec from a Serve config, else ``{}``."""
    entry = settings.deployment(spec)
    run = settings.run_deployment(spec)
    if entry is None or run is None:
        return {}
    return {"deployment": {**entry.record(), "replaced": run[1]}}


def write_atomically(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` so that readers see the old or the new file,
    never a partial one."""
    target = Path(path)
    text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets; this is not one
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and put back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
