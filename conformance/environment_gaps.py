"""Telling an environment gap from a callback bug (docs/design.md §Environment gaps are not
defects).

A callback that fails because this machine lacks something a deployment has is not
defective: :func:`environment_gap` finds, anywhere in an error's chain (``__cause__``,
``__context__``, the ``cause`` of a ``RayTaskError``), either

* a ``ModuleNotFoundError`` for a top-level package that is not installed here (the
  package and the importing line are named; vLLM, which Ray's engine imports before any hook
  runs, is said to be always present in a deployment), or
* a failure to reach the network (DNS, refused or timed-out connections, Hugging Face's
  offline mode, botocore's endpoint errors), with the host where the error names one,

and returns it as a :class:`~conformance.failure.Inconclusive`. Anything else is the
callback's.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import traceback
from collections.abc import Iterator
from typing import Any, Final

from reference_runner.ray_replica import CHAIN_ATTRIBUTE

from .failure import Inconclusive

#: Exception type names (any module) that mean "the network could not be reached".
NETWORK_ERROR_NAMES: Final = frozenset(
    {
        "NewConnectionError",
        "MaxRetryError",
        "ConnectTimeout",
        "ConnectTimeoutError",
        "NameResolutionError",
        "OfflineModeIsEnabled",
        "LocalEntryNotFoundError",
        "EndpointConnectionError",
        "ClientConnectorError",
        "ServerTimeoutError",
    }
)
#: Packages a deployment always has, and why.
ALWAYS_DEPLOYED: Final = {
    "vllm": "Ray's engine imports vLLM before any hook runs, so every deployment has it",
    "torch": "vLLM needs torch, so every deployment has it",
}


def _kit_folders() -> tuple[str, ...]:
    """The kit's own package folders (found, not imported: ``conformance`` never imports the
    plugin), whose frames are never "where the callback imported it"."""
    folders = [os.path.dirname(os.path.abspath(__file__))]
    for package in ("reference_runner", "pytest_raycallbacks"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        folders.extend(spec.submodule_search_locations or () if spec is not None else ())
    return tuple(os.path.realpath(f) + os.sep for f in folders)


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception behind it, each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        for nxt in (exc.__cause__, exc.__context__, getattr(exc, "cause", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def chain_links(error: BaseException) -> list[dict[str, Any]]:
    """Every exception of ``error``'s chain as a description (see
    :func:`reference_runner.ray_replica.annotate_chain`): the live chain, plus what each of
    its exceptions carried across a pickle (where ``__cause__`` and tracebacks are lost)."""
    links: list[dict[str, Any]] = []
    for exc in error_chain(error):
        stored = getattr(exc, CHAIN_ATTRIBUTE, None)
        if isinstance(stored, list):
            links.extend(link for link in stored if isinstance(link, dict))
        frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
        links.append(
            {
                "type": type(exc).__qualname__,
                "module": type(exc).__module__,
                "message": str(exc),
                "missing_module": exc.name if isinstance(exc, ModuleNotFoundError) else None,
                "where": _where(frames),
                "network": isinstance(exc, socket.gaierror | ConnectionRefusedError),
            }
        )
    return links


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _where(frames: list[traceback.FrameSummary]) -> str | None:
    """``file:line (function)`` of the last frame outside importlib and the kit."""
    kit = _kit_folders()
    for frame in reversed(frames):
        path = frame.filename
        if "importlib" in path or path.startswith("<"):
            continue
        if os.path.realpath(path).startswith(kit):
            continue
        return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return None


def missing_package(error: BaseException) -> tuple[str, str, str | None] | None:
    """``(package, module, where)`` when ``error``'s chain holds a ``ModuleNotFoundError``
    for a top-level package not installed here, else ``None``."""
    for link in chain_links(error):
        name = link.get("missing_module")
        if isinstance(name, str) and name:
            top = name.split(".")[0]
            if not _installed(top):
                return top, name, link.get("where")
    return None


def network_failure(error: BaseException) -> str | None:
    """What could not be reached, when ``error``'s chain says the network failed."""
    for link in chain_links(error):
        if link.get("network") or link.get("type") in NETWORK_ERROR_NAMES:
            return f"{link.get('type')}: {link.get('message')}"
    return None


def environment_gap(error: BaseException, *, where: str) -> Inconclusive | None:
    """The :class:`Inconclusive` verdict for ``error`` raised ``where`` (a hook, an import),
    or ``None`` when it is the callback's own failure (see the module docstring)."""
    missing = missing_package(error)
    if missing is not None:
        package, module, line = missing
        at = f"{where}, importing {module!r}" + (f" at {line}" if line else "")
        why = ALWAYS_DEPLOYED.get(package)
        todo = (
            f"certify in the deployment's image, where {package!r} is installed"
            + (f" ({why})" if why else "")
            + f", or install it here (pip install {package})"
        )
        return Inconclusive(needs=f"the package {package!r}", where=at, todo=todo)
    network = network_failure(error)
    if network is not None:
        return Inconclusive(
            needs=f"network access ({network})",
            where=where,
            todo="certify where the deployment's network is reachable, or serve what the "
            "callback fetches locally: --raycallbacks-s3 BUCKET=DIR for S3 buckets, "
            "--raycallbacks-model-source DIR for the model",
        )
    return None
