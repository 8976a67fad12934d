"""The callback under test: its spec, what the spec names, and the loaded callable.

:class:`Subject` resolves a spec with :func:`reference_runner.loading.resolve_spec` (as
``load_callback`` does, but without instantiating a class), so the loading checks can tell
"does not import" from "cannot be instantiated". Everything is computed once and cached;
:meth:`Subject.fresh` is the exception: it returns a new instance for a class spec every
time.

A spec naming a subclass of Ray 2.60's ``CallbackBase`` has the style ``"callbackbase"``
(:attr:`Subject.style`): it is then loaded as a
:class:`~reference_runner.ray_callback_base.CallbackBaseAdapter`, which runs the class as
Ray does (built with Ray's keyword call, hooks at their phases), so the checks that apply
to both styles drive it like any callback. Its ``callback_kwargs`` (Ray's
``callback_config.callback_kwargs``, given to the subject) go into every build: the adapter,
the instance shipped to workers, the constructor check and the fresh interpreter.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from reference_runner import CallbackLoadError, load_callback
from reference_runner.loading import ResolvedSpec, resolve_spec
from reference_runner.ray_callback_base import CallbackBaseAdapter, is_callback_base_class

from .registry import CALLBACK, CALLBACKBASE

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
    """

    def __init__(
        self,
        spec: str,
        *,
        import_paths: tuple[str, ...] = (),
        cwd: str = ".",
        callback_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.import_paths = import_paths
        self.cwd = cwd
        self.callback_kwargs: dict[str, Any] = dict(callback_kwargs or {})
        self._lock = threading.RLock()
        self._resolved: ResolvedSpec | None = None
        self._resolve_error: CallbackLoadError | None = None
        self._loaded: Callable[..., Any] | None = None
        self._load_error: CallbackLoadError | None = None
        self._memo: dict[str, Any] = {}

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
                try:
                    self._resolved = resolve_spec(self.spec)
                except CallbackLoadError as exc:
                    self._resolve_error = exc
            if self._resolve_error is not None:
                raise self._resolve_error
            assert self._resolved is not None
            return self._resolved

    def load(self) -> Callable[..., Any]:
        """The callable as ``load_callback`` returns it (cached: one instance per process,
        as a Ray worker keeps one); raise ``CallbackLoadError``."""
        with self._lock:
            if self._loaded is None and self._load_error is None:
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
        object the spec names (a function, or a module-level instance as loaded)."""
        if self.is_class:
            return self._load_new()
        return self.load()

    def _load_new(self) -> Callable[..., Any]:
        if self.style == CALLBACKBASE:
            return CallbackBaseAdapter(self.resolve().target, callback_kwargs=self.callback_kwargs)
        return load_callback(self.spec)

    def config_entry(self) -> Any:
        """What goes into ``LLMConfig.callbacks`` to run it on a cluster: the spec itself,
        or a fresh adapter for a ``CallbackBase`` subclass (which has no spec of ours: it
        pickles as its class, imported by the worker)."""
        return self.fresh() if self.style == CALLBACKBASE else self.spec

    def ray_instance(self, llm_config: Any) -> Any:
        """A ``CallbackBase`` subclass built as Ray builds it, once per subject:
        ``cls(raise_error_on_callback=True, llm_config=llm_config, ctx_kwargs=<Ray's>,
        **callback_kwargs)`` (an unplaced placement group, ``MODEL_AND_TOKENIZER``, the
        runtime env Ray completes from none). What is shipped to workers. Raises what the
        constructor raises (not memoized then)."""
        from reference_runner.ray_callback_base import construct_as_ray

        target = self.resolve().target
        return self.memo(
            "ray-instance",
            lambda: construct_as_ray(target, llm_config, callback_kwargs=self.callback_kwargs),
        )

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
            return _source_without_import(self.spec)
        file = getattr(resolved.module, "__file__", None)
        return {"module": resolved.module_name, "file": file, "sha256": _sha256(file)}


def _sha256(file: str | None) -> str | None:
    if not file:
        return None
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError:
        return None


def _source_without_import(spec: str) -> dict[str, Any]:
    """Best effort for a spec that does not import: find its module's file without
    running it (only parent packages are imported by ``find_spec``)."""
    import importlib.util

    module_name = spec.split(":", 1)[0] if ":" in spec else spec.rsplit(".", 1)[0]
    file = None
    for name in (module_name, module_name.rsplit(".", 1)[0]):
        try:
            found = importlib.util.find_spec(name)
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
