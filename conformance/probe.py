"""Loading a callback in a fresh interpreter, as a Ray worker does.

:func:`start_probe` starts ``python -c`` in the folder the kit was invoked from, with only the
deliberate import paths (the invocation folder, the rootdir, the user's ``PYTHONPATH`` and
``pythonpath`` setting) and the installed packages on ``sys.path``: nothing the test session
added. It imports the spec's module (timed), loads the spec with ``load_callback``, and,
given the callable pickled with Ray's cloudpickle, rebuilds it there. For a ``CallbackBase``
subclass (``construct=False``) it resolves the class, rebuilds the shipped instance, and,
given ``ray_build`` (the ``LLMConfig`` JSON and the ``callback_kwargs``), also builds the
class cold as Ray builds it on a replica (``construct_as_ray``), reporting a failure as
``build_error``. The answer is one JSON line, so whatever the module prints does not get in
the way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

_MARKER: Final = "RAYCALLBACKS-PROBE "
#: Time allowed on top of the import limit for the interpreter and the kit to start.
_STARTUP_ALLOWANCE_S: Final = 60.0

_SCRIPT: Final = r"""
import importlib, json, os, pickle, sys, threading, time
spec, module_name, blob_path, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
construct = sys.argv[5] == "construct"
build_path = sys.argv[6]
result = {}
def give_up():
    print("\n__MARKER__" + json.dumps({"timed_out": True}), flush=True)
    os._exit(0)
watchdog = threading.Timer(limit, give_up)
watchdog.daemon = True
def name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__module__ + "." + cls.__qualname__
from reference_runner.loading import load_callback, resolve_spec
start = time.perf_counter()
watchdog.start()
try:
    importlib.import_module(module_name)
    result["import_s"] = time.perf_counter() - start
    watchdog.cancel()
    loaded = load_callback(spec) if construct else resolve_spec(spec).target
    result["loaded_type"] = name(loaded)
except BaseException as exc:
    result.setdefault("import_s", time.perf_counter() - start)
    result["error"] = type(exc).__name__ + ": " + str(exc)
if build_path and "error" not in result:
    try:
        from reference_runner import LLMConfig
        from reference_runner.ray_callback_base import construct_as_ray
        with open(build_path, encoding="utf-8") as handle:
            build = json.load(handle)
        construct_as_ray(
            loaded,
            LLMConfig.model_validate_json(build["config"]),
            callback_kwargs=build["callback_kwargs"],
        )
    except BaseException as exc:
        result["build_error"] = type(exc).__name__ + ": " + str(exc)
if blob_path:
    try:
        with open(blob_path, "rb") as handle:
            shipped = pickle.load(handle)
        result["shipped_type"] = name(shipped)
        result["shipped_callable"] = callable(shipped)
    except BaseException as exc:
        result["ship_error"] = type(exc).__name__ + ": " + str(exc)
watchdog.cancel()
sys.stdout.flush()
print("\n__MARKER__" + json.dumps(result))
""".replace("__MARKER__", _MARKER)


@dataclass(frozen=True)
class ProbeResult:
    """What the fresh interpreter reported.

    ``timed_out`` means importing the module took longer than the import limit;
    ``error`` is the loading error there (``None`` when it loaded); ``import_s`` the time to
    import the spec's module; ``ship_error`` the error rebuilding the pickled callable;
    ``build_error`` the error building a ``CallbackBase`` subclass as Ray does (``ray_build``).
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


class PendingProbe:
    """A probe running in the background; :meth:`result` waits for it (bounded)."""

    def __init__(
        self,
        process: subprocess.Popen[str] | None,
        tmp: tempfile.TemporaryDirectory[str],
        limit_s: float,
        pickle_error: str | None,
    ) -> None:
        self._process = process
        self._tmp = tmp
        self._limit_s = limit_s
        self._pickle_error = pickle_error
        self._result: ProbeResult | None = None

    def result(self) -> ProbeResult:
        """The probe's answer (computed once)."""
        if self._result is None:
            self._result = self._collect()
            self._tmp.cleanup()
        return self._result

    def _collect(self) -> ProbeResult:
        assert self._process is not None
        try:
            out, err = self._process.communicate(timeout=self._limit_s + _STARTUP_ALLOWANCE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            out, err = self._process.communicate()
            return ProbeResult(None, None, None, timed_out=True, output=(out + err)[-2000:])
        answer = next(
            (line for line in reversed(out.splitlines()) if line.startswith(_MARKER)), None
        )
        if answer is None:
            text = (out + err)[-2000:]
            return ProbeResult(
                None, None, f"the interpreter exited with status {self._process.returncode}: {text}"
            )
        data = json.loads(answer[len(_MARKER) :])
        if data.get("timed_out"):
            return ProbeResult(None, None, None, timed_out=True, output=out[-2000:])
        return ProbeResult(
            import_s=data.get("import_s"),
            loaded_type=data.get("loaded_type"),
            error=data.get("error"),
            shipped_type=data.get("shipped_type"),
            ship_error=data.get("ship_error"),
            pickle_error=self._pickle_error,
            output=(out + err)[-2000:],
            build_error=data.get("build_error"),
        )


def start_probe(
    spec: str,
    module_name: str,
    *,
    cwd: str,
    import_paths: tuple[str, ...],
    import_limit_s: float,
    shipped: Any = None,
    ship: bool = False,
    construct: bool = True,
    ray_build: tuple[str, Mapping[str, Any]] | None = None,
) -> PendingProbe:
    """Start loading ``spec`` in a fresh interpreter (see the module docstring) and return
    at once; with ``ship``, the interpreter also rebuilds ``shipped`` from Ray's
    cloudpickle. ``construct=False`` resolves the spec without calling a class it names;
    ``ray_build=(llm_config_json, callback_kwargs)`` then builds that class as Ray does
    (``callback_kwargs`` must be JSON: they come from the kit's option)."""
    pickle_error = None
    tmp = tempfile.TemporaryDirectory(prefix="raycallbacks-probe-")
    blob_path = ""
    if ship:
        try:
            from ray import cloudpickle

            blob = cloudpickle.dumps(shipped)  # type: ignore[no-untyped-call]
        except Exception as exc:
            pickle_error = f"{type(exc).__name__}: {exc}"
        else:
            blob_path = str(Path(tmp.name) / "callback.pkl")
            Path(blob_path).write_bytes(blob)
    build_path = ""
    if ray_build is not None:
        config_json, callback_kwargs = ray_build
        build_path = str(Path(tmp.name) / "build.json")
        Path(build_path).write_text(
            json.dumps({"config": config_json, "callback_kwargs": dict(callback_kwargs)}),
            encoding="utf-8",
        )
    env = dict(os.environ)
    paths = [*import_paths, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.pop("PYTEST_CURRENT_TEST", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            spec,
            module_name,
            blob_path,
            repr(import_limit_s),
            "construct" if construct else "resolve",
            build_path,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    return PendingProbe(process, tmp, import_limit_s, pickle_error)
