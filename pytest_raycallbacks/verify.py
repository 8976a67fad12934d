"""The deploy gate: does a certificate still describe what is about to be deployed?

:func:`verify_certificate` re-reads each certified callback's module source (located with
``importlib.util.find_spec``, so the callback's module body is not executed) and returns
one :class:`Finding` per problem:

* the certificate's verdict for a callback is not ``certified``, or, when it certifies a
  chain (``--raycallbacks-chain``), the chain's verdict is not;
* the module's source no longer hashes (SHA-256 of the file's bytes) to what the
  certificate recorded, or the module cannot be found any more; with the certificate's
  ``sources`` (every own source file importing and running the callback loaded, and the
  distributions it used), each such file that changed, is gone, or imports own code it did
  not import when certified (:func:`pytest_raycallbacks.report.sources.source_findings`);
* the installed Ray's ``major.minor`` differs from the one the certificate was made with;
* a ``CallbackBase`` subclass is deployed with other ``callback_kwargs`` than it was
  certified with: the hash of the deploy's kwargs (``callback_kwargs``, by spec; none given
  means ``{}``) differs from the certificate's ``callback_kwargs_sha256``. Both are hashed
  with secret-looking values masked (:func:`pytest_raycallbacks.callback_kwargs.kwargs_sha256`),
  so a rotated token is not a difference; kwargs given for a spec the certificate does not
  hold are a finding too.

An empty list means the certificate still holds. Nothing here imports Ray or pytest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .report.sources import module_file, source_findings

KNOWN_FORMATS: Final = ("raycallbacks-certificate/1",)


class CertificateError(ValueError):
    """The certificate cannot be read or is not a raycallbacks certificate."""


@dataclass(frozen=True)
class Finding:
    """One reason the certificate does not hold; ``spec`` is ``None`` for run-wide ones."""

    spec: str | None
    what: str

    def __str__(self) -> str:
        return f"{self.spec}: {self.what}" if self.spec else self.what


def load_certificate(path: str | Path) -> dict[str, Any]:
    """Read and sanity-check a certificate file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CertificateError(f"cannot read certificate {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{str(path)!r} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") not in KNOWN_FORMATS:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise CertificateError(
            f"{str(path)!r} is not a raycallbacks certificate (format {found!r}; expected one "
            f"of {list(KNOWN_FORMATS)}); write one with pytest --raycallbacks-report PATH"
        )
    if not isinstance(document.get("callbacks"), list) or not document["callbacks"]:
        raise CertificateError(f"{str(path)!r} certifies no callback")
    return document


def verify_certificate(
    document: dict[str, Any],
    *,
    import_paths: Sequence[str] = (),
    ray_version: str | None = None,
    callback_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    serve_configs: Sequence[Any] = (),
) -> list[Finding]:
    """Everything that no longer holds (see the module docstring); ``[]`` means deployable.

    ``serve_configs`` are the parsed deployment files about to be deployed
    (:func:`pytest_raycallbacks.serve_config.read_serve_config`): their entries are compared
    with the certified ones (:func:`serve_config_findings`). A callback certified from a
    Serve config is judged on its kwargs only that way: without the file, that is a finding.

    ``import_paths`` are put in front of ``sys.path`` while modules are located (the folder
    the certificate was made from, typically). ``ray_version`` defaults to the installed one.
    ``callback_kwargs`` are the kwargs each ``CallbackBase`` spec is deployed with.
    """
    findings: list[Finding] = []
    certified_ray = (document.get("environment") or {}).get("ray")
    installed_ray = ray_version if ray_version is not None else _installed("ray")
    if _major_minor(certified_ray) != _major_minor(installed_ray):
        findings.append(
            Finding(
                None,
                f"Ray {installed_ray or 'is not installed'} here, but the certificate was made "
                f"with Ray {certified_ray}: certify again against the Ray you deploy",
            )
        )
    with _prepended(import_paths):
        for entry in document["callbacks"]:
            findings.extend(_verify_callback(entry))
    from_files = [e for e in document["callbacks"] if e.get("deployment")]
    others = [e for e in document["callbacks"] if not e.get("deployment")]
    findings.extend(kwargs_findings(others, callback_kwargs or {}))
    for serve_config in serve_configs:
        findings.extend(serve_config_findings(from_files, serve_config))
    if from_files and not serve_configs:
        files = sorted(
            {str((e.get("deployment") or {}).get("place", "?")).split(":")[0] for e in from_files}
        )
        findings.append(
            Finding(
                None,
                f"{len(from_files)} callback(s) were certified from a Serve config "
                f"({', '.join(files)}): pass it with --serve-config PATH, so that the "
                "entries, callback_kwargs and llm_configs about to be deployed are compared",
            )
        )
    chain = document.get("chain")
    if isinstance(chain, dict) and chain.get("verdict") != "certified":
        specs = " -> ".join(str(s) for s in chain.get("specs") or [])
        findings.append(
            Finding(
                f"chain {specs}",
                f"verdict was {chain.get('verdict')!r}, not 'certified' (see the certificate's "
                "chain: collisions, differences and fixes)",
            )
        )
    return findings


def _verify_callback(entry: dict[str, Any]) -> Iterator[Finding]:
    spec = str(entry.get("spec"))
    verdict = entry.get("verdict")
    if verdict != "certified":
        yield Finding(spec, f"verdict was {verdict!r}, not 'certified'")
    sources = entry.get("sources")
    if isinstance(sources, dict) and sources.get("files"):
        for what in source_findings(sources):
            yield Finding(spec, f"{what}: certify it again")
        return
    module = entry.get("module")
    recorded = entry.get("sha256")
    if not module or not recorded:
        yield Finding(spec, "the certificate recorded no module source hash for it")
        return
    file = module_file(module)
    if file is None:
        yield Finding(
            spec, f"module {module!r} cannot be found any more (sys.path: {sys.path[:3]}...)"
        )
        return
    current = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    if current != recorded:
        yield Finding(
            spec,
            f"source of {module!r} changed since certification ({file}: sha256 was "
            f"{recorded[:12]}..., now {current[:12]}...): certify it again",
        )


def kwargs_findings(
    entries: Sequence[dict[str, Any]], deployed: Mapping[str, Mapping[str, Any]]
) -> list[Finding]:
    """Where the deploy's ``callback_kwargs`` differ from the certified ones (see the
    module docstring)."""
    from .callback_kwargs import kwargs_sha256, masked

    findings: list[Finding] = []
    specs = {str(entry.get("spec")) for entry in entries}
    for spec in sorted(set(deployed) - specs):
        findings.append(
            Finding(spec, "callback_kwargs given for it, but the certificate does not hold it")
        )
    for entry in entries:
        spec = str(entry.get("spec"))
        recorded = entry.get("callback_kwargs_sha256")
        given = deployed.get(spec)
        if recorded is None:
            if given:
                findings.append(
                    Finding(spec, "callback_kwargs given, but it was not certified with any")
                )
            continue
        if kwargs_sha256(given or {}) == recorded:
            continue
        how = (
            "none were given (pass them with --callback-kwargs SPEC=JSON or SPEC=@FILE)"
            if given is None
            else f"the deploy's are {json.dumps(masked(given), sort_keys=True)}"
        )
        findings.append(
            Finding(
                spec,
                "certified with callback_kwargs "
                f"{json.dumps(entry.get('callback_kwargs'), sort_keys=True)} (sha256 "
                f"{str(recorded)[:12]}...), but {how}: a different configuration; certify it "
                "again with pytest --raycallbacks-callback-kwargs for the kwargs you deploy",
            )
        )
    return findings


def serve_config_findings(entries: Sequence[dict[str, Any]], serve_config: Any) -> list[Finding]:
    """Where the deployment file about to be deployed (a parsed
    :class:`~pytest_raycallbacks.serve_config.ServeConfig`) differs from what the certificate
    certified: an entry whose callback was not certified (or not as ``certified``), or whose
    ``callback_kwargs``, ``raise_error_on_callback`` or ``llm_config`` changed."""
    from .callback_kwargs import kwargs_sha256

    by_spec = {str(entry.get("spec")): entry for entry in entries}
    findings: list[Finding] = []
    for deployed in serve_config.entries:
        spec = deployed.spec
        entry = by_spec.get(spec)
        if entry is None:
            findings.append(
                Finding(
                    spec,
                    f"{deployed.place} deploys it, but the certificate does not hold it: "
                    "certify the file with pytest --raycallbacks-serve-config "
                    f"{serve_config.path} --raycallbacks-report ...",
                )
            )
            continue
        certified = entry.get("deployment") or {}
        if entry.get("callback_kwargs_sha256") != kwargs_sha256(deployed.callback_kwargs):
            findings.append(
                Finding(
                    spec,
                    f"{deployed.place}: callback_kwargs differ from the certified ones "
                    f"({json.dumps(entry.get('callback_kwargs'), sort_keys=True)}): certify "
                    "the file again",
                )
            )
        if certified.get("raise_error_on_callback", True) != deployed.raise_error_on_callback:
            findings.append(
                Finding(
                    spec,
                    f"{deployed.place}: raise_error_on_callback is "
                    f"{deployed.raise_error_on_callback}, certified with "
                    f"{certified.get('raise_error_on_callback')}: certify the file again",
                )
            )
        recorded = certified.get("llm_config_sha256")
        if recorded and recorded != deployed.config_sha256():
            findings.append(
                Finding(
                    spec,
                    f"{deployed.place}: the llm_config changed since certification (its "
                    "model, engine_kwargs, placement or runtime env may change what the "
                    "callback sees): certify the file again",
                )
            )
    return findings


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major_minor(version: str | None) -> tuple[str, ...] | None:
    return tuple(version.split(".")[:2]) if version else None


@contextmanager
def _prepended(paths: Sequence[str]) -> Iterator[None]:
    added = [str(Path(p).resolve()) for p in paths]
    sys.path[:0] = added
    try:
        yield
    finally:
        for path in added:
            sys.path.remove(path)
