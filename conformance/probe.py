"""Loading a callback in a fresh interpreter, as a Ray worker does.

A probe runs in a child forked from the run's probe server (:mod:`conformance.probe_server`,
driven by :mod:`conformance.probe_host`): an interpreter started in the folder the kit was
invoked from, with only the deliberate import paths (the invocation folder, the rootdir, the
user's ``PYTHONPATH`` and ``pythonpath`` setting) and the installed packages on ``sys.path``:
nothing the test session added, and none of the user's modules ever imported before the
fork. It imports the spec's module (timed), loads the spec with ``load_callback``, and,
given the callable pickled with Ray's cloudpickle, rebuilds it there. For a ``CallbackBase``
subclass (``construct=False``) it resolves the class, rebuilds the shipped instance, and,
given ``ray_build`` (the ``LLMConfig`` JSON and the ``callback_kwargs``), also builds the
class cold as Ray builds it on a replica (``construct_as_ray``), reporting a failure as
``build_error``. It also reports the modules importing and loading the spec imported (the
callback's import closure, for the certificate). What the module prints goes to a file of
its own, so it never gets in the way of the answer.

:func:`import_probe` is the kit's first contact with a spec (at configure time, before it
imports anything in the test process): it only resolves the spec and says its style. Every
probe is bounded by the parent, whatever the module does (see :mod:`conformance.probe_host`):
the import by the import limit, each later stage by the per-call timeout; an overrun kills
the child's process group and the answer says which stage overran.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reference_runner.loading import module_guess

from .probe_host import (
    FORK_S,
    KILL_WAIT_S,
    STARTUP_S,
    Probe,
    describe_stage,
    probe_env,
    probe_path,
    shared_server,
)

#: Longest wait for an answer beyond the probe's own deadlines (the deadline thread ends
#: every probe well before; this only guards against that thread being gone).
_COLLECT_SLACK_S: Final = 30.0


@dataclass(frozen=True)
class ProbeResult:
    """What the fresh interpreter reported.

    ``timed_out`` means importing the module took longer than the import limit (the child
    was killed); ``error`` is the loading error there (``None`` when it loaded), also when a
    later stage overran (``overran`` names it) or the interpreter ended (``died_in`` names
    the stage, ``exit_status`` how); ``import_s`` the time to import the spec's module;
    ``ship_error`` the error rebuilding the pickled callable; ``build_error`` the error
    building a ``CallbackBase`` subclass as Ray does (``ray_build``); ``modules`` the
    modules importing and loading the spec imported there (name -> file); ``module``,
    ``style`` and ``is_class`` what the spec names (``None`` when it did not resolve);
    ``probe_s`` how long the probe took, from submission to answer.
    """

    import_s: float | None
    loaded_type: str | None
    error: str | None
    shipped_type: str | None = None
    ship_error: str | None = None
    pickle_error: str | None = None
    timed_out: bool = False
    output: str = ""
    build_error: str | None = None
    modules: dict[str, str | None] = field(default_factory=dict)
    module: str | None = None
    style: str | None = None
    is_class: bool | None = None
    overran: str | None = None
    died_in: str | None = None
    exit_status: int | None = None
    probe_s: float | None = None


class PendingProbe:
    """A probe running in the background; :meth:`result` waits for it (bounded)."""

    def __init__(
        self,
        probe: Probe,
        tmp: tempfile.TemporaryDirectory[str],
        *,
        module: str | None,
        pickle_error: str | None,
    ) -> None:
        self._probe = probe
        self._tmp = tmp
        self._module = module
        self._pickle_error = pickle_error
        self._lock = threading.Lock()
        self._result: ProbeResult | None = None

    @property
    def done(self) -> bool:
        return self._probe.done.is_set()

    def result(self) -> ProbeResult:
        """The probe's answer (computed once)."""
        with self._lock:
            if self._result is None:
                probe = self._probe
                longest = STARTUP_S + FORK_S + probe.import_limit_s + 3 * probe.stage_limit_s
                if not probe.done.wait(longest + KILL_WAIT_S + _COLLECT_SLACK_S):
                    probe.failure = "the probe's deadline thread is gone"
                self._result = _interpret(probe, self._module, self._pickle_error)
                self._tmp.cleanup()
            return self._result


def _interpret(probe: Probe, module: str | None, pickle_error: str | None) -> ProbeResult:
    answer = probe.answer()
    output = probe.output()
    name = answer.get("module") or module or module_guess(probe.spec)
    fields: dict[str, Any] = {
        "import_s": answer.get("import_s"),
        "loaded_type": answer.get("loaded_type"),
        "error": answer.get("error"),
        "shipped_type": answer.get("shipped_type"),
        "ship_error": answer.get("ship_error"),
        "pickle_error": pickle_error,
        "output": output,
        "build_error": answer.get("build_error"),
        "modules": dict(answer.get("modules") or {}),
        "module": answer.get("module") or module,
        "style": answer.get("style"),
        "is_class": answer.get("is_class"),
        "exit_status": probe.status,
        "probe_s": (probe.ended - probe.submitted) if probe.ended is not None else None,
    }
    if probe.failure is not None and probe.overran is None:
        fields["error"] = f"the kit could not probe it: {probe.failure}"
    elif probe.overran is not None:
        fields["overran"] = probe.overran
        limit = probe.import_limit_s if probe.overran == "import" else probe.stage_limit_s
        what = f"{describe_stage(probe.overran)} did not finish within {limit:g} s"
        if probe.overran in ("import", "queued"):
            fields["timed_out"] = probe.overran == "import"
            fields["import_s"] = None
            if probe.overran == "queued":
                fields["error"] = f"the kit could not probe it: {what}"
        elif probe.overran == "load":
            fields["error"] = f"TimeoutError: {what}"
        elif probe.overran == "build":
            fields["build_error"] = f"TimeoutError: {what}"
        else:
            fields["ship_error"] = f"TimeoutError: {what}"
    elif not answer.get("complete"):
        stage = probe.stage
        fields["died_in"] = stage
        how = exit_words(probe.status)
        where = f"importing {name!r}" if stage in ("import", "queued") else describe_stage(stage)
        fields["error"] = f"the interpreter {how} while {where}" + (
            f"; its output ends with: {output.strip()[-300:]}" if output.strip() else ""
        )
    return ProbeResult(**fields)


def exit_words(status: int | None) -> str:
    """How an interpreter ended: ``exited with status 3``, ``was killed by SIGSEGV``."""
    if status is None:
        return "ended"
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def start_probe(
    spec: str,
    module_name: str | None,
    *,
    cwd: str,
    import_paths: tuple[str, ...],
    import_limit_s: float,
    timeout_s: float | None = None,
    shipped: Any = None,
    ship: bool = False,
    construct: bool = True,
    ray_build: tuple[str, Mapping[str, Any]] | None = None,
) -> PendingProbe:
    """Start loading ``spec`` in a fresh interpreter (see the module docstring) and return
    at once; with ``ship``, the interpreter also rebuilds ``shipped`` from Ray's
    cloudpickle. ``construct=False`` resolves the spec without calling a class it names;
    ``ray_build=(llm_config_json, callback_kwargs)`` then builds that class as Ray does
    (``callback_kwargs`` must be JSON: they come from the kit's option). ``module_name``
    ``None`` times resolving the whole spec as its import. ``timeout_s`` bounds each stage
    after the import (default: the import limit)."""
    pickle_error = None
    server = shared_server()
    tmp = tempfile.TemporaryDirectory(  # in the server's folder: see ProbeServer.folder
        prefix="raycallbacks-probe-", dir=server.folder, ignore_cleanup_errors=True
    )
    folder = Path(tmp.name)
    blob_path = ""
    if ship:
        try:
            from ray import cloudpickle

            blob = cloudpickle.dumps(shipped)  # type: ignore[no-untyped-call]
        except Exception as exc:
            pickle_error = f"{type(exc).__name__}: {exc}"
        else:
            blob_path = str(folder / "callback.pkl")
            Path(blob_path).write_bytes(blob)
    build_path = ""
    if ray_build is not None:
        config_json, callback_kwargs = ray_build
        build_path = str(folder / "build.json")
        Path(build_path).write_text(
            json.dumps({"config": config_json, "callback_kwargs": dict(callback_kwargs)}),
            encoding="utf-8",
        )
    request = {
        "cwd": cwd,
        "path": probe_path(import_paths),
        "env": probe_env(import_paths),  # as it is now: the server's is from its start
        "spec": spec,
        "module": module_name,
        "construct": construct,
        "blob": blob_path,
        "build": build_path,
    }
    probe = server.submit(
        request,
        folder,
        import_limit_s=import_limit_s,
        stage_limit_s=timeout_s if timeout_s is not None else import_limit_s,
    )
    return PendingProbe(probe, tmp, module=module_name, pickle_error=pickle_error)


def import_probe(
    spec: str, *, cwd: str, import_paths: tuple[str, ...], import_limit_s: float
) -> PendingProbe:
    """Resolve ``spec`` in a fresh interpreter without constructing anything: does it import
    within ``import_limit_s``, and what does it name (:attr:`ProbeResult.style`)?"""
    return start_probe(
        spec,
        None,
        cwd=cwd,
        import_paths=import_paths,
        import_limit_s=import_limit_s,
        construct=False,
    )
