"""The callback under test: its spec, what the spec names, and the loaded callable.

:class:`Subject` resolves a spec with :func:`reference_runner.loading.resolve_spec` (as
``load_callback`` does, but without instantiating a class), so the loading checks can tell
"does not import" from "cannot be instantiated". Everything is computed once and cached;
:meth:`Subject.fresh` is the exception: it returns a new instance for a class spec every
time.

A spec naming a subclass of Ray's ``CallbackBase`` has the style ``"callbackbase"``
(:attr:`Subject.style`). Ray is the judge of such a class (docs/design.md §Ray is the judge):
the subject holds its deployment (:attr:`Subject.deployment`: the ``llm_config`` from a Serve
config, or a default) and builds Ray's own ``LLMConfig`` of it (:meth:`Subject.ray_llm_config`)
for every replica start. Its ``callback_kwargs`` (Ray's ``callback_config.callback_kwargs``)
and ``raise_error_on_callback`` go into every build: Ray's ``get_or_create_callback``, the
instance shipped to workers, the constructor check and the fresh interpreter.
:meth:`Subject.load` still gives a
:class:`~reference_runner.ray_callback_base.CallbackBaseAdapter` for such a spec (what the
loading checks import and build).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Final, TypeVar

from reference_runner import CallbackLoadError, load_callback
from reference_runner.loading import ResolvedSpec, module_guess, resolve_spec, split_label
from reference_runner.ray_callback_base import CallbackBaseAdapter, is_callback_base_class

from .bounds import CheckNotRun, Halt, deadline_passed, import_hung_here
from .deadline import DeadlineExceeded, call_with_deadline
from .interruptible import Overran, interrupt_after
from .registry import CALLBACK, CALLBACKBASE

T = TypeVar("T")

#: The certificate's ``kind`` of a ``CallbackBase`` subclass.
CALLBACKBASE_KIND = "ray CallbackBase subclass"


class Subject:
    """One callback spec under certification.

    Args:
        spec: the import path given on the command line.
        import_paths: folders a fresh interpreter (or Ray worker) gets on ``sys.path``
            besides the installed packages (the invocation folder, the rootdir, ...).
        cwd: the folder the user invoked the kit from.
        callback_kwargs: for a ``CallbackBase`` subclass, the keyword arguments Ray passes
            its constructor from ``callback_config.callback_kwargs`` (``{}``: none).
        timeout_s: the per-call bound; with it, constructing the callback (a class spec,
            a ``CallbackBase`` subclass as Ray builds it) runs on a thread under that
            deadline, and an overrun halts the subject (:meth:`halt`) (docs/design.md §Bounds on
            user code).
        import_limit_s: with it, importing the spec here on the main thread is interrupted
            once it overran that limit (:func:`conformance.interruptible.interrupt_after`),
            which halts the subject (the import probe had imported it in time, so it waits
            for something of this process's).

    Once :attr:`halted` (a deadline passed, or the import probe refused the module), the
    subject runs no more user code: what was not imported or built yet raises
    ``CallbackLoadError`` with the halt's reason.
    """

    def __init__(
        self,
        spec: str,
        *,
        import_paths: tuple[str, ...] = (),
        cwd: str = ".",
        callback_kwargs: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        import_limit_s: float | None = None,
        deployment: Mapping[str, Any] | None = None,
        raise_error_on_callback: bool = True,
        label: str | None = None,
    ) -> None:
        self.spec = spec
        #: For a ``CallbackBase`` subclass: the deployment's ``llm_config`` (Ray's fields, as
        #: a Serve config holds it, model source already replaced by one the kit serves),
        #: without its ``callback_config``; ``None``: :func:`default_deployment`.
        self.deployment: dict[str, Any] | None = dict(deployment) if deployment else None
        self.raise_error_on_callback = raise_error_on_callback
        #: Where the deployment came from (``serve.yaml: app 'a', model 'm'``), for messages.
        self.label = label
        self.timeout_s = timeout_s
        self.import_limit_s = import_limit_s
        self.import_paths = import_paths
        self.cwd = cwd
        self.callback_kwargs: dict[str, Any] = dict(callback_kwargs or {})
        self._lock = threading.RLock()
        self._resolved: ResolvedSpec | None = None
        self._resolve_error: CallbackLoadError | None = None
        self._loaded: Callable[..., Any] | None = None
        self._load_error: CallbackLoadError | None = None
        self._memo: dict[str, Any] = {}
        self._modules: dict[str, str | None] = {}
        self._halt: Halt | None = None
        #: The check running now (set by the kit), named by a halt that happens meanwhile.
        self.running_check: str | None = None

    # ------------------------------------------------------------------ halting

    @property
    def halted(self) -> Halt | None:
        """Why the kit runs no more of this callback's code (``None``: it does)."""
        return self._halt

    def halt(self, halt: Halt) -> Halt:
        """Stop running this callback's code (the first halt stays); returns the halt."""
        with self._lock:
            if self._halt is None:
                check = halt.check or self.running_check
                self._halt = dataclasses.replace(halt, check=check)
            return self._halt

    def _refuse(self) -> None:
        halt = self._halt
        if halt is not None:
            raise CallbackLoadError(self.spec, halt.reason)

    def _bounded(self, make: Callable[[], T], what: str) -> T:
        """``make()`` (user code: a constructor) under the subject's deadline."""
        if self.timeout_s is None:
            return make()
        try:
            return call_with_deadline(make, self.timeout_s, what=what, with_event_loop=True)
        except DeadlineExceeded:
            message = (
                f"{what} did not finish within {self.timeout_s:g} s: a blocking call in the "
                "constructor (network, a lock, a sleep)? make __init__ return promptly: "
                "create clients and load models lazily, in the phase that needs them"
            )
            self.halt(deadline_passed(self.spec, message, constructor=True))
            raise CallbackLoadError(self.spec, message) from None

    def note_loaded(self, modules: Mapping[str, str | None]) -> None:
        """Remember ``modules`` (name -> file) as loaded by importing or running the
        callback: its import closure in a fresh interpreter, the modules its calls imported."""
        with self._lock:
            for name, file in modules.items():
                self._modules.setdefault(name, file)

    def loaded_modules(self) -> dict[str, str | None]:
        """Every module seen loaded by importing or running the callback so far (its own
        module included when it imports), name -> file, sorted by name. Never raises."""
        with self._lock:
            modules = dict(self._modules)
        source = self.source
        if source.get("module"):
            modules.setdefault(source["module"], source.get("file"))
        return dict(sorted(modules.items()))

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per subject and ``key``."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = make()
        with self._lock:
            return self._memo.setdefault(key, value)

    # ------------------------------------------------------------------ resolving

    def resolve(self) -> ResolvedSpec:
        """Import the spec's module and walk to the object; raise ``CallbackLoadError``."""
        with self._lock:
            if self._resolved is None and self._resolve_error is None:
                self._refuse()
                try:
                    self._resolved = self._import()
                except CallbackLoadError as exc:
                    self._resolve_error = exc
            if self._resolve_error is not None:
                raise self._resolve_error
            assert self._resolved is not None
            return self._resolved

    def _import(self) -> ResolvedSpec:
        """``resolve_spec``, interrupted after :attr:`import_limit_s` (which halts)."""
        if self.import_limit_s is None:
            return resolve_spec(self.spec)
        try:
            with interrupt_after(self.import_limit_s):
                return resolve_spec(self.spec)
        except Overran:
            module = module_guess(self.spec)
            halt = self.halt(import_hung_here(self.spec, module, self.import_limit_s))
            raise CallbackLoadError(self.spec, halt.reason) from None

    def load(self) -> Callable[..., Any]:
        """The callable as ``load_callback`` returns it (cached: one instance per process,
        as a Ray worker keeps one); raise ``CallbackLoadError``."""
        with self._lock:
            if self._loaded is None and self._load_error is None:
                self._refuse()
                try:
                    self._loaded = self._load_new()
                except CallbackLoadError as exc:
                    self._load_error = exc
            if self._load_error is not None:
                raise self._load_error
            assert self._loaded is not None
            return self._loaded

    def fresh(self) -> Callable[..., Any]:
        """A callable in its initial state: a new instance for a class spec, else the
        object the spec names (a function, or a module-level instance as loaded). Raises
        :class:`~conformance.bounds.CheckNotRun` for a halted class spec."""
        if self.is_class:
            if self._halt is not None:
                raise CheckNotRun(self._halt.summary)
            return self._load_new()
        return self.load()

    def _load_new(self) -> Callable[..., Any]:
        if self.style == CALLBACKBASE:  # the adapter builds the class at its first call
            return CallbackBaseAdapter(self.resolve().target, callback_kwargs=self.callback_kwargs)
        target = self.resolve().target
        if isinstance(target, type):
            return self._bounded(
                lambda: load_callback(self.spec), f"constructing {_name(target)}()"
            )
        return load_callback(self.spec)

    def config_entry(self) -> Any:
        """What goes into ``LLMConfig.callbacks`` to run it on a cluster: the spec itself,
        or a fresh adapter for a ``CallbackBase`` subclass (which has no spec of ours: it
        pickles as its class, imported by the worker)."""
        return self.fresh() if self.style == CALLBACKBASE else self.spec

    def ray_config(self) -> dict[str, Any]:
        """Ray's ``llm_config`` for this subject, as a mapping: the deployment's (or
        :func:`default_deployment`) with ``callback_config`` naming the spec, its
        ``callback_kwargs`` and ``raise_error_on_callback``."""
        config = dict(self.deployment or default_deployment())
        config["callback_config"] = {
            "callback_class": split_label(self.spec)[0],
            "callback_kwargs": dict(self.callback_kwargs),
            "raise_error_on_callback": self.raise_error_on_callback,
        }
        return config

    def ray_llm_config(self) -> Any:
        """A fresh Ray ``LLMConfig`` of :meth:`ray_config`, built and validated by Ray
        (:func:`reference_runner.ray_llm.build_ray_llm_config`): one per replica start, as
        each replica process deserializes its own."""
        from reference_runner.ray_llm import build_ray_llm_config

        return build_ray_llm_config(self.ray_config(), where=self.label or "llm_config")

    def ray_instance(self, llm_config: Any) -> Any:
        """A ``CallbackBase`` subclass built as Ray builds it, once per subject:
        ``cls(raise_error_on_callback=True, llm_config=llm_config, ctx_kwargs=<Ray's>,
        **callback_kwargs)`` (an unplaced placement group, ``MODEL_AND_TOKENIZER``, the
        runtime env Ray completes from none). What is shipped to workers. Raises what the
        constructor raises (not memoized then)."""
        from reference_runner.ray_callback_base import construct_as_ray

        target = self.resolve().target

        def build() -> Any:
            self._refuse()
            return self._bounded(
                lambda: construct_as_ray(target, llm_config, callback_kwargs=self.callback_kwargs),
                f"building {_name(target)} as Ray builds it",
            )

        return self.memo("ray-instance", build)

    @property
    def is_class(self) -> bool:
        return isinstance(self.resolve().target, type)

    @cached_property
    def style(self) -> str:
        """``"callbackbase"`` when the spec names a subclass of Ray's ``CallbackBase``,
        else ``"callback"`` (also when it does not import: the loading checks say why)."""
        try:
            target = self.resolve().target
        except CallbackLoadError:
            return CALLBACK
        return CALLBACKBASE if is_callback_base_class(target) else CALLBACK

    @cached_property
    def kind(self) -> str:
        """``function``, ``async function``, ``class``, ``instance``, ``lambda`` or
        ``ray CallbackBase subclass``."""
        target = self.resolve().target
        if self.style == CALLBACKBASE:
            return CALLBACKBASE_KIND
        if isinstance(target, type):
            return "class"
        if inspect.isfunction(target):
            if target.__name__ == "<lambda>":
                return "lambda"
            return "async function" if inspect.iscoroutinefunction(target) else "function"
        return "instance"

    @cached_property
    def source(self) -> dict[str, Any]:
        """Module name, file and SHA-256 of the file (``None`` where unknown), for the
        certificate. Never raises."""
        try:
            resolved = self.resolve()
        except CallbackLoadError:
            return source_without_import(self.spec)
        file = getattr(resolved.module, "__file__", None)
        return {"module": resolved.module_name, "file": file, "sha256": _sha256(file)}


#: The ``model_id`` of the default deployment, served from the bundled tiny model.
DEFAULT_MODEL_ID: Final = "raycallbacks-tiny-model"


def default_deployment() -> dict[str, Any]:
    """The deployment a ``CallbackBase`` subclass is certified against when no Serve config
    gives one: the bundled tiny model as a local model source, vLLM, no accelerator type."""
    from reference_runner import TINY_MODEL_PATH

    return {
        "model_loading_config": {"model_id": DEFAULT_MODEL_ID, "model_source": TINY_MODEL_PATH},
        "llm_engine": "vLLM",
    }


def _sha256(file: str | None) -> str | None:
    if not file:
        return None
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError:
        return None


def _name(target: Any) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def _find_without_import(name: str) -> Any:
    """The module spec of ``name`` found on ``sys.path`` without running anything (not
    even a parent package's ``__init__``); ``None`` when not found that way."""
    from importlib.machinery import PathFinder

    parts = name.split(".")
    search: Any = None
    found: Any = None
    for index in range(len(parts)):
        found = PathFinder.find_spec(".".join(parts[: index + 1]), search)
        if found is None:
            return None
        search = found.submodule_search_locations
        if search is None and index < len(parts) - 1:
            return None
    return found


def source_without_import(spec: str) -> dict[str, Any]:
    """Best effort for a spec that is not imported (it does not import, or the kit refused
    to import it): find its module's file without running any module."""
    module_name = module_guess(spec)
    file = None
    for name in (module_name, module_name.rsplit(".", 1)[0]):
        try:
            found = _find_without_import(name)
        except Exception:
            found = None
        if found is not None and found.origin not in (None, "built-in", "frozen"):
            file, module_name = found.origin, name
            break
    return {"module": module_name, "file": file, "sha256": _sha256(file)}


def style_of(spec: str) -> str:
    """The style of callback ``spec`` names (see :attr:`Subject.style`), importing it; what
    does not import (even a module that calls ``sys.exit()`` on import) is a ``"callback"``:
    its loading checks say why."""
    try:
        return Subject(spec).style
    except (Exception, SystemExit):
        return CALLBACK
