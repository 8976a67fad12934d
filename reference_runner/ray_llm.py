"""Ray's own ``LLMConfig``, built and validated by Ray, on a machine without vLLM or torch.

For ``CallbackBase`` callbacks Ray is the judge (docs/design.md §Ray is the judge): the hooks
get Ray's ``ray.serve.llm.LLMConfig``, built by Ray's pydantic model from the deployment's
own ``llm_config``, and every later step is Ray's code. A certifying machine usually lacks
two packages a deployment always has, and this module stands in for exactly those, nothing
else (each stand-in is listed by :func:`stand_ins` and recorded in the certificate):

* **vLLM's argument classes.** Ray's ``VLLMEngineConfig`` (``vllm_models``, which
  ``LLMConfig.get_engine_config()`` and ``get_or_create_callback()`` use) imports vLLM's
  ``AsyncEngineArgs`` and ``FrontendArgs`` only to sort ``engine_kwargs`` into the two.
  When vLLM is not installed, that module is imported with two stand-in dataclasses
  (removed from ``sys.modules`` right after the import, so a hook that imports vLLM still
  finds it missing); the engine stand-in accepts the ``engine_kwargs`` names of every config
  built here (:func:`build_ray_llm_config`). So without vLLM ``engine_kwargs`` are not
  checked against vLLM's own argument list.
* **torch's cache folder.** Ray's ``download_model_files`` calls
  ``torch.hub._get_torch_home()`` before anything else. Without torch,
  :func:`torch_stand_in` gives Ray's ``download_utils`` a ``torch`` with just that function
  (answering a folder of the run's), and puts ``None`` back afterwards.

Importing this module imports neither Ray nor vLLM; the functions do, when called.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Final

#: Where Ray defines the ``LLMConfig`` deployments use (``ray.serve.llm.LLMConfig``).
RAY_LLM_CONFIG_MODULE: Final = "ray.llm._internal.serve.core.configs.llm_config"
#: Ray's vLLM engine config (``VLLMEngineConfig``), imported by ``get_engine_config()``.
RAY_VLLM_MODELS_MODULE: Final = "ray.llm._internal.serve.engines.vllm.vllm_models"
#: Ray's model download (``download_model_files``), which needs torch's cache folder.
RAY_DOWNLOAD_UTILS_MODULE: Final = "ray.llm._internal.common.utils.download_utils"

_LOCK = threading.RLock()
_VLLM_STAND_IN: Final = (
    "vLLM's AsyncEngineArgs and FrontendArgs (vLLM is not installed here): engine_kwargs are "
    "not checked against vLLM's own argument list"
)
_TORCH_STAND_IN: Final = (
    "torch's cache folder for Ray's download_model_files (torch is not installed here)"
)


class RayConfigError(ValueError):
    """Ray's own ``LLMConfig`` refused a config: the message is Ray's (pydantic's) text,
    prefixed with where the config came from."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.ray_message = message
        super().__init__(f"{where}: Ray's LLMConfig refused it: {message}")


@dataclasses.dataclass
class _FrontendArgsStandIn:
    """Stands in for vLLM's ``FrontendArgs`` (vLLM not installed): no fields."""


class _EngineArgsStandIn:
    """Stands in for vLLM's ``AsyncEngineArgs`` (vLLM not installed): a dataclass whose
    fields are the ``engine_kwargs`` names of the configs built so far, so Ray sorts every
    one of them as an engine argument instead of refusing it as unknown."""

    __dataclass_fields__: Final[dict[str, Any]] = {}


def _accept_engine_kwargs(names: Any) -> None:
    fields = _EngineArgsStandIn.__dataclass_fields__
    for name in names:
        if isinstance(name, str) and name not in fields:
            field: Any = dataclasses.field(default=None)
            field.name = name
            field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
            fields[name] = field


def vllm_installed() -> bool:
    """Whether vLLM can be imported here (without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def _vllm_stand_in_modules() -> dict[str, types.ModuleType]:
    modules = {}
    entries: list[tuple[str, dict[str, Any]]] = [
        ("vllm", {}),
        ("vllm.engine", {}),
        ("vllm.engine.arg_utils", {"AsyncEngineArgs": _EngineArgsStandIn}),
        ("vllm.entrypoints", {}),
        ("vllm.entrypoints.launchers", {}),
        ("vllm.entrypoints.launchers.cli_args", {"FrontendArgs": _FrontendArgsStandIn}),
    ]
    for name, attrs in entries:
        module = types.ModuleType(name)
        vars(module).update(attrs)
        modules[name] = module
    return modules


@contextlib.contextmanager
def _vllm_stood_in() -> Iterator[None]:
    """vLLM's stand-in modules in ``sys.modules`` while inside, what was there put back after
    (so a hook importing vLLM later still finds it missing)."""
    stand_ins = _vllm_stand_in_modules()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def ray_engine_config_module() -> types.ModuleType:
    """Ray's ``vllm_models`` module, imported with vLLM's two argument classes stood in
    when vLLM is not installed (see the module docstring)."""
    with _LOCK:
        loaded = sys.modules.get(RAY_VLLM_MODELS_MODULE)
        if loaded is not None:
            return loaded
        if vllm_installed():
            return importlib.import_module(RAY_VLLM_MODELS_MODULE)
        with _vllm_stood_in():
            module = importlib.import_module(RAY_VLLM_MODELS_MODULE)
        return module


def ray_llm_config_class() -> type:
    """Ray's ``LLMConfig`` class (``ray.serve.llm.LLMConfig``), its engine config importable."""
    with warnings.catch_warnings():
        # Ray Serve's own models use pydantic v1 idioms (PydanticDeprecatedSince20): Ray's
        # to fix, and noise in every user's test run.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(RAY_LLM_CONFIG_MODULE)
        ray_engine_config_module()
    cls: type = module.LLMConfig
    return cls


def build_ray_llm_config(config: Mapping[str, Any], *, where: str = "llm_config") -> Any:
    """Ray's ``LLMConfig`` validated from ``config`` (a mapping as a Serve config holds it),
    with its engine config built once (``get_engine_config()``), so what Ray refuses there
    (an engine argument it does not know, a bad placement group config) is refused here.

    Raises :class:`RayConfigError` with Ray's message, naming ``where``.
    """
    cls = ray_llm_config_class()
    engine_kwargs = config.get("engine_kwargs") if isinstance(config, Mapping) else None
    if not vllm_installed() and isinstance(engine_kwargs, Mapping):
        with _LOCK:
            _accept_engine_kwargs(engine_kwargs)
    try:
        built = cls.model_validate(dict(config))  # type: ignore[attr-defined]
        built.get_engine_config()
    except Exception as exc:
        raise RayConfigError(where, ray_message(exc)) from exc
    return built


def ray_message(exc: BaseException) -> str:
    """Ray's (pydantic's) message for ``exc``: each error as ``field.path: message``."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors()
        except Exception:
            items = None
        if items:
            lines = []
            for item in items:
                loc = ".".join(str(p) for p in item.get("loc", ())) or "(the config)"
                lines.append(f"{loc}: {item.get('msg', '')}")
            return "; ".join(lines)
    return f"{type(exc).__name__}: {exc}"


def torch_installed() -> bool:
    """Whether torch can be imported here (without importing it)."""
    return importlib.util.find_spec("torch") is not None


@contextlib.contextmanager
def torch_stand_in(torch_home: str) -> Iterator[None]:
    """While inside, Ray's ``download_utils.torch`` answers ``hub._get_torch_home()`` with
    ``torch_home`` when torch is not installed (Ray's ``try_import`` left it ``None``); the
    previous value is put back on exit. With torch installed, nothing changes."""
    module = importlib.import_module(RAY_DOWNLOAD_UTILS_MODULE)
    if getattr(module, "torch", None) is not None:
        yield
        return
    setattr(module, "torch", _torch_stand_in(torch_home))  # noqa: B010 - Ray's module
    try:
        yield
    finally:
        setattr(module, "torch", None)  # noqa: B010


#: What a Ray worker runs at start-up for the kit's clusters (``worker_process_setup_hook``
#: of the driver's job): :func:`install_stand_ins`.
WORKER_SETUP_HOOK: Final = "reference_runner.ray_llm.install_stand_ins"


class _StandInFinder(importlib.abc.MetaPathFinder):
    """On ``sys.meta_path`` of a Ray worker: the first import of Ray's ``vllm_models`` goes
    through :func:`ray_engine_config_module` (vLLM's argument classes stood in when vLLM is
    missing), and Ray's ``download_utils`` gets torch's cache folder stood in once imported
    when torch is missing. Other imports are not touched."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in (RAY_VLLM_MODELS_MODULE, RAY_DOWNLOAD_UTILS_MODULE):
            return None
        if fullname == RAY_VLLM_MODELS_MODULE and vllm_installed():
            return None
        sys.meta_path.remove(self)  # find the real module, then wrap its loading
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _StandInLoader(spec.loader, fullname)
        return spec


class _StandInLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        if self._name == RAY_VLLM_MODELS_MODULE:
            with _vllm_stood_in():
                self._loader.exec_module(module)
            return
        self._loader.exec_module(module)
        if getattr(module, "torch", None) is None:
            setattr(module, "torch", _torch_stand_in(_worker_torch_home()))  # noqa: B010


def _worker_torch_home() -> str:
    import os
    import tempfile

    root = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    return os.path.join(root, "raycallbacks-torch-home")


def _torch_stand_in(torch_home: str) -> Any:
    return types.SimpleNamespace(hub=types.SimpleNamespace(_get_torch_home=lambda: torch_home))


def install_stand_ins() -> None:
    """For a Ray worker process (the kit's ``worker_process_setup_hook``): stand in for
    vLLM's argument classes and torch's cache folder the moment Ray's modules that need them
    are imported, where those packages are missing (see :class:`_StandInFinder`); a no-op
    where they are installed. Imports nothing itself."""
    if not any(isinstance(f, _StandInFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder())
        loaded = sys.modules.get(RAY_DOWNLOAD_UTILS_MODULE)  # imported before the hook ran
        if loaded is not None and getattr(loaded, "torch", None) is None:
            setattr(loaded, "torch", _torch_stand_in(_worker_torch_home()))  # noqa: B010


def planned_stand_ins() -> tuple[str, ...]:
    """What a ``CallbackBase`` certification in this environment stands in for Ray (the
    certificate states it), decided from what is installed, without importing it."""
    planned = []
    if not vllm_installed():
        planned.append(_VLLM_STAND_IN)
    if not torch_installed():
        planned.append(_TORCH_STAND_IN)
    planned.append(
        "the engine start itself (vLLM's engine and GPUs): Ray's VLLMEngine.start is run up "
        "to what it reads from the callback (ctx and the model path)"
    )
    return tuple(planned)
