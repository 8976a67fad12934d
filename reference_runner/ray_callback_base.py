"""Ray 2.60's class-based callbacks (``CallbackBase``) run as one of our callbacks.

Ray 2.60 ships a class-based variant of the callback idea in
``ray.llm._internal.common.callbacks.base``: a ``CallbackBase`` subclass, built once per
process as ``cls(raise_error_on_callback=..., llm_config=..., ctx_kwargs={...},
**callback_kwargs)``, whose hooks read and write a ``CallbackCtx`` (``self.ctx``). This module

* detects such a class (:func:`is_callback_base_class`, :func:`resolve_callback_base_class`)
  without importing Ray itself: a class can only subclass ``CallbackBase`` if its module
  already imported Ray's, so detection looks in ``sys.modules``;
* builds it with Ray's keyword call (:func:`construct_as_ray`, including
  ``callback_kwargs``);
* adapts it (:class:`CallbackBaseAdapter`) into a callback ``(phase, config, data)`` that
  calls its hooks at the phases Ray calls them, the way Ray calls them, and maps ``ctx``
  onto our reserved keys in both directions.

Spec strings are resolved by :func:`reference_runner.loading.resolve_spec`. ``ctx`` itself
(Ray's API import, ``ctx_kwargs``, the mapping, field validity) is
:mod:`reference_runner.ray_callback_ctx`'s. The rules a subclass must follow to be certified
are the conformance catalogue's (``conformance.checks.callbackbase``); the adapter only
records what it saw (:class:`HookCall`) and raises on what Ray itself could not run.

Hooks and phases (Ray 2.60: ``VLLMEngine.start`` in ``vllm_engine.py``,
``initialize_node`` in ``node_initialization_utils.py``, ``download_model_files`` in
``download_utils.py``):

==============================================  ===================  ========================
hook                                            our phase            how Ray calls it
==============================================  ===================  ========================
``on_before_node_init``                         pre_initialization   ``await run_callback``
``on_before_download_model_files_distributed``  pre_download         ``run_callback_sync`` in
                                                                     a task on each worker
                                                                     node, on a shipped copy
``on_after_node_init``                          post_initialization  ``await run_callback``
==============================================  ===================  ========================

``ctx`` and ``data``: before every hook ``data`` is copied onto ``ctx``; after it, the fields
the hook changed become the mapping the adapter returns, so the runner's trace credits the
class (the table is in :mod:`reference_runner.ray_callback_ctx`; what does not map, such as
the default placement group Ray builds *before* the callback and we after ``post_download``,
is listed in ``docs/ray_callback_base.md``).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .cloud_errors import cloud_error_note
from .downloadable import NodeModelDownloadable
from .errors import CallbackError, CallbackLoadError, CallbackReturnError
from .hook_recording import HookRecorder, in_daemon_thread
from .loading import resolve_spec
from .phases import POST_INITIALIZATION, PRE_DOWNLOAD, PRE_INITIALIZATION
from .ray_callback_ctx import (
    RAY_CALLBACK_BASE_MODULE,
    CtxState,
    apply_data_to_ctx,
    ctx_field_problems,
    data_from_ctx,
    data_view,
    ray_callback_api,
    ray_ctx_kwargs,
    ray_runtime_env,
    to_ctx_download_choice,
)
from .reserved import PLACEMENT_GROUP, RUNTIME_ENV, WORKER_NODE_DOWNLOAD_MODEL
from .shared_data import MISSING

ON_BEFORE_NODE_INIT: Final = "on_before_node_init"
ON_BEFORE_DOWNLOAD: Final = "on_before_download_model_files_distributed"
ON_AFTER_NODE_INIT: Final = "on_after_node_init"

#: Each hook Ray 2.60 calls, with the phase of ours at which the adapter calls it.
HOOK_PHASES: Final[Mapping[str, str]] = {
    ON_BEFORE_NODE_INIT: PRE_INITIALIZATION,
    ON_BEFORE_DOWNLOAD: PRE_DOWNLOAD,
    ON_AFTER_NODE_INIT: POST_INITIALIZATION,
}
PHASE_HOOKS: Final[Mapping[str, str]] = {phase: hook for hook, phase in HOOK_PHASES.items()}
#: Hooks Ray awaits with ``await callback.run_callback(name)`` (they should be ``async def``).
AWAITED_HOOKS: Final = (ON_BEFORE_NODE_INIT, ON_AFTER_NODE_INIT)
#: Hooks Ray calls with ``callback.run_callback_sync(name)`` (they should be plain ``def``).
SYNC_HOOKS: Final = (ON_BEFORE_DOWNLOAD,)
#: The keywords Ray's ``get_or_create_callback`` passes itself; ``callback_kwargs`` cannot
#: use them (Ray's call would get each twice).
RAY_CONSTRUCTOR_KEYWORDS: Final = ("raise_error_on_callback", "llm_config", "ctx_kwargs")


class RayCallbackContractError(CallbackError, TypeError):
    """A ``CallbackBase`` subclass broke what Ray relies on: it has no ``CallbackCtx`` in
    ``self.ctx`` (its ``__init__`` skipped ``super().__init__``), replaced ``self.ctx`` with
    something else, or cannot be pickled to the worker nodes."""


# ---------------------------------------------------------------------- detection


def _loaded_callback_base() -> type | None:
    """Ray's ``CallbackBase`` if its module is already imported, else ``None``."""
    module = sys.modules.get(RAY_CALLBACK_BASE_MODULE)
    base = getattr(module, "CallbackBase", None)
    return base if isinstance(base, type) else None


def is_callback_base_class(obj: object) -> bool:
    """True when ``obj`` is Ray's ``CallbackBase`` or a subclass, or an import path naming
    one. Never raises and never imports Ray itself; an import path is imported (a path that
    does not import is not a ``CallbackBase`` class: the caller's loader reports it)."""
    if isinstance(obj, str):
        try:
            obj = resolve_spec(obj).target
        except Exception:
            return False
    base = _loaded_callback_base()
    return base is not None and isinstance(obj, type) and issubclass(obj, base)


def resolve_callback_base_class(spec: str | type) -> type:
    """The ``CallbackBase`` subclass ``spec`` is or names.

    Raises :class:`CallbackLoadError` when the spec does not load or is not one.
    """
    target: Any = resolve_spec(spec).target if isinstance(spec, str) else spec
    if is_callback_base_class(target):
        assert isinstance(target, type)
        return target
    what = f"class {target.__qualname__}" if isinstance(target, type) else type(target).__name__
    raise CallbackLoadError(
        spec,
        f"it names {what}, which is not a subclass of Ray's CallbackBase "
        f"({RAY_CALLBACK_BASE_MODULE}.CallbackBase)",
    )


# ---------------------------------------------------------------------- construction


def ray_constructor_kwargs(
    llm_config: Any,
    *,
    ctx_kwargs: Mapping[str, Any],
    callback_kwargs: Mapping[str, Any] | None = None,
    raise_error_on_callback: bool = True,
) -> dict[str, Any]:
    """The keyword arguments of Ray 2.60's ``LLMConfig.get_or_create_callback`` call
    ``cls(raise_error_on_callback=..., llm_config=..., ctx_kwargs={...},
    **callback_config.callback_kwargs)``.

    Raises ``TypeError`` naming the key when ``callback_kwargs`` has a key that is not a
    ``str`` or is one of :data:`RAY_CONSTRUCTOR_KEYWORDS` (Ray's call would fail).
    """
    kwargs = dict(callback_kwargs or {})
    bad = [key for key in kwargs if not isinstance(key, str)]
    if bad:
        raise TypeError(
            f"callback_kwargs keys must be str (they become keyword arguments of the class); "
            f"got {bad!r}. Use the option names your __init__ reads from self.kwargs"
        )
    taken = [key for key in kwargs if key in RAY_CONSTRUCTOR_KEYWORDS]
    if taken:
        raise TypeError(
            f"callback_kwargs may not hold {taken!r}: Ray passes "
            f"{', '.join(RAY_CONSTRUCTOR_KEYWORDS)} itself, so its call would get them twice. "
            "Set raise_error_on_callback through callback_config, and rename your option"
        )
    return {
        "raise_error_on_callback": raise_error_on_callback,
        "llm_config": llm_config,
        "ctx_kwargs": dict(ctx_kwargs),
        **kwargs,
    }


def construct_as_ray(
    callback_class: type,
    llm_config: Any,
    *,
    ctx_kwargs: Mapping[str, Any] | None = None,
    callback_kwargs: Mapping[str, Any] | None = None,
    raise_error_on_callback: bool = True,
) -> Any:
    """Build ``callback_class`` as Ray 2.60 builds it on a replica:
    ``callback_class(**ray_constructor_kwargs(...))``, all by keyword.

    ``ctx_kwargs`` defaults to :func:`~reference_runner.ray_callback_ctx.ray_ctx_kwargs`
    (what a deployment passes; imports Ray). Raises ``TypeError`` for bad
    ``callback_kwargs`` (see :func:`ray_constructor_kwargs`), and what the constructor
    raises, as itself with a note saying how it was called.
    """
    kwargs = ray_constructor_kwargs(
        llm_config,
        ctx_kwargs=ray_ctx_kwargs() if ctx_kwargs is None else ctx_kwargs,
        callback_kwargs=callback_kwargs,
        raise_error_on_callback=raise_error_on_callback,
    )
    try:
        return callback_class(**kwargs)
    except Exception as exc:
        own = sorted(k for k in kwargs if k not in RAY_CONSTRUCTOR_KEYWORDS)
        exc.add_note(
            f"[reference_runner] raised while constructing {callback_class.__qualname__}"
            " as Ray does: cls(raise_error_on_callback=..., llm_config=..., "
            f"ctx_kwargs=..., **callback_kwargs) with callback_kwargs {own}"
        )
        raise


# ---------------------------------------------------------------------- observations


@dataclass(frozen=True)
class HookCall:
    """One hook call the adapter made, for whoever judges the run (the conformance
    catalogue's ``callbackbase.*`` checks read these).

    ``callback`` is the class's qualified name; ``awaited`` is Ray's verdict
    (``inspect.iscoroutinefunction`` of the bound method); ``returned`` is what the hook
    itself returned (Ray discards it; ``None`` if it raised); ``raised`` what the hook
    itself raised; ``surfaced`` what Ray's ``run_callback`` let out (its wrapping
    ``Exception``, or ``None`` when it logged and swallowed the error); ``changed`` the
    ``ctx`` fields the hook changed; ``mapped`` what the adapter returned into ``data``;
    ``lost`` the fields changed on a shipped copy (lost in Ray);
    ``unmapped`` notes on changes ``data`` cannot express.
    """

    phase: str
    callback: str
    hook: str
    ray_call: Literal["run_callback", "run_callback_sync"]
    awaited: bool
    on_worker_copy: bool
    returned: Any = None
    raised: BaseException | None = None
    surfaced: BaseException | None = None
    changed: tuple[str, ...] = ()
    mapped: Mapping[str, Any] = field(default_factory=dict)
    lost: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
    duration_s: float = 0.0


# ---------------------------------------------------------------------- the adapter


class CallbackBaseAdapter:
    """A callback ``(phase, config, data)`` that runs a ``CallbackBase`` subclass as Ray
    2.60 does.

    On its first call it builds the instance as Ray's ``LLMConfig.get_or_create_callback``
    does (:func:`construct_as_ray`): ``cls(raise_error_on_callback=..., llm_config=config,
    ctx_kwargs={"worker_node_download_model": ..., "placement_group": ...,
    "runtime_env": ...}, **callback_kwargs)``, with ``ctx_kwargs`` from what ``data`` holds
    (``MODEL_AND_TOKENIZER``, no group and the config's ``runtime_env`` when it holds
    nothing; the runtime env completed as Ray completes it,
    :func:`~reference_runner.ray_callback_ctx.ray_runtime_env`). Then, at each phase of
    :data:`PHASE_HOOKS`, it copies onto ``ctx`` what others changed in ``data`` since
    ``ctx`` last reflected it (what the class left in ``ctx`` stays, as in Ray, where
    ``ctx`` is the only state), calls the hook through the
    instance's own ``run_callback`` (awaited) or ``run_callback_sync`` (in a thread with no
    event loop, as in a Ray task), checks the ``ctx`` fields, and returns the fields the
    hook changed as a mapping for ``data``. Other phases return ``None``.

    Args:
        callback_class: the ``CallbackBase`` subclass, or an import path naming it.
        callback_kwargs: Ray's ``CallbackConfig.callback_kwargs``: the class's own options,
            passed as keywords to its constructor (the instance keeps them in
            ``self.kwargs``). Checked at once: ``TypeError`` for a non-str key or one of
            :data:`RAY_CONSTRUCTOR_KEYWORDS`.
        raise_error_on_callback: Ray's ``CallbackConfig.raise_error_on_callback``: ``True``
            makes a hook's exception surface as Ray's ``Exception("Error running callback
            method ...")`` chained to it; ``False`` logs it and carries on.
        ship_download_hook: run ``on_before_download_model_files_distributed`` on a copy of
            the instance pickled with Ray's serializer, as Ray ships it to each worker
            node (default); its ``ctx`` changes are then lost as in Ray, and recorded in
            :attr:`calls`. ``False`` runs it on the instance and maps its changes.

    Errors: a hook's exception as Ray's ``run_callback`` raises it; a constructor's as
    itself (with a note saying how it was called); wrong ``ctx`` field types as
    :class:`~reference_runner.CallbackReturnError`; a missing or replaced ``ctx`` or an
    instance that cannot be pickled as :class:`RayCallbackContractError`.

    :attr:`instance` is the ``CallbackBase`` instance (``None`` before the first call) and
    :attr:`calls` every :class:`HookCall`, for the rules.
    """

    def __init__(
        self,
        callback_class: str | type,
        *,
        callback_kwargs: Mapping[str, Any] | None = None,
        raise_error_on_callback: bool = True,
        ship_download_hook: bool = True,
    ) -> None:
        self.callback_class: type = resolve_callback_base_class(callback_class)
        self.spec = callback_class
        # Fail here, not on the first phase, when Ray's call could not take these.
        ray_constructor_kwargs(None, ctx_kwargs={}, callback_kwargs=callback_kwargs)
        self.callback_kwargs: dict[str, Any] = dict(callback_kwargs or {})
        self.raise_error_on_callback = raise_error_on_callback
        self.ship_download_hook = ship_download_hook
        self.instance: Any = None
        self.calls: list[HookCall] = []
        # What of data the instance's ctx reflects (see ray_callback_ctx.data_view).
        self._reflected: dict[str, Any] = {}
        # describe_callback() names the adapter after the class it runs.
        self.__module__ = self.callback_class.__module__
        self.__qualname__ = f"{self.callback_class.__qualname__} (CallbackBase)"

    def __repr__(self) -> str:
        return f"CallbackBaseAdapter({self.callback_class.__module__}.{self.__qualname__})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as a fresh adapter for the same class and options (as Ray builds one
        instance per process): the instance and the recorded calls stay here."""
        return (
            _fresh_adapter,
            (
                self.callback_class,
                self.callback_kwargs,
                self.raise_error_on_callback,
                self.ship_download_hook,
            ),
        )

    async def __call__(
        self, phase: str, config: Any, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        hook = PHASE_HOOKS.get(phase)
        if hook is None:
            return None
        if self.instance is None:
            self.instance = self.construct(config, data)
            self._reflected = data_view(self._construction_data(config, data))
        ctx = self._ctx_of(self.instance, phase, hook)
        placement_group_required = data.get(PLACEMENT_GROUP) is not None
        apply_data_to_ctx(ctx, data, reflected=self._reflected)
        self._reflected = data_view(data)
        if hook == ON_BEFORE_DOWNLOAD:
            if ctx.run_init_node is False:
                return None  # Ray skips initialize_node, and with it this hook
            target = self._shipped_copy() if self.ship_download_hook else self.instance
        else:
            target = self.instance
        call, before = await self._call_hook(target, phase, hook)
        mapped = self._finish(call, before, target, placement_group_required)
        self._reflected.update(data_view(mapped or {}))
        return mapped

    # ------------------------------------------------------------------ steps

    def _construction_data(self, config: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data`` view ``ctx_kwargs`` come from: ``data``'s keys, else the defaults
        (``MODEL_AND_TOKENIZER``, no group, the config's ``runtime_env``)."""
        runtime_env = data.get(RUNTIME_ENV, getattr(config, "runtime_env", None))
        out = {
            WORKER_NODE_DOWNLOAD_MODEL: data.get(
                WORKER_NODE_DOWNLOAD_MODEL, NodeModelDownloadable.MODEL_AND_TOKENIZER
            ),
            PLACEMENT_GROUP: data.get(PLACEMENT_GROUP),
        }
        if isinstance(runtime_env, Mapping):
            out[RUNTIME_ENV] = runtime_env
        return out

    def ctx_kwargs_for(self, config: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """The ``ctx_kwargs`` Ray would pass, from ``data`` and ``config``: the runtime env
        is completed as Ray completes it (``{"env_vars": {}}`` at least, the Hugging Face
        tokens of this process's environment copied in; see
        :func:`~reference_runner.ray_callback_ctx.ray_runtime_env`)."""
        source = self._construction_data(config, data)
        group_config = getattr(config, "placement_group_config", None)
        return {
            "worker_node_download_model": to_ctx_download_choice(
                source[WORKER_NODE_DOWNLOAD_MODEL]
            ),
            "placement_group": source[PLACEMENT_GROUP],
            "runtime_env": ray_runtime_env(
                source.get(RUNTIME_ENV), bundles=getattr(group_config, "bundles", None)
            ),
        }

    def construct(self, config: Any, data: Mapping[str, Any]) -> Any:
        """Build the instance with Ray's keyword call (see the class docstring)."""
        return construct_as_ray(
            self.callback_class,
            config,
            ctx_kwargs=self.ctx_kwargs_for(config, data),
            callback_kwargs=self.callback_kwargs,
            raise_error_on_callback=self.raise_error_on_callback,
        )

    def _ctx_of(self, instance: Any, phase: str, hook: str) -> Any:
        ctx = getattr(instance, "ctx", MISSING)
        ctx_class = ray_callback_api().CallbackCtx
        if not isinstance(ctx, ctx_class):
            name = self.callback_class.__qualname__
            what = "has no ctx attribute" if ctx is MISSING else f"has ctx = {ctx!r}"
            raise RayCallbackContractError(
                f"{name} {what} before {hook} (phase {phase!r}); Ray reads and writes a "
                "CallbackCtx in self.ctx: call super().__init__(**kwargs) in __init__ and "
                "change ctx's fields rather than replacing it"
            )
        return ctx

    def _shipped_copy(self) -> Any:
        """The instance after a round trip through Ray's serializer, as a worker gets it.

        Its ``llm_config`` travels without our ``callbacks`` list: Ray's config names the
        class in ``callback_config`` (class and kwargs, which the instance carries), while
        ours lists the callables the runner was given, wrappers of a test harness included,
        which are not the class's to ship."""
        pickler: Any
        try:
            from ray import cloudpickle as pickler
        except ImportError:  # pragma: no cover - Ray is installed wherever this runs
            import pickle as pickler
        try:
            return pickler.loads(pickler.dumps(_with_shippable_config(self.instance)))
        except Exception as exc:
            raise RayCallbackContractError(
                f"{self.callback_class.__qualname__} instance cannot be sent to worker nodes: "
                "Ray pickles the LLMConfig holding it into each node's download task "
                f"(initialize_remote_node), and pickling failed: {type(exc).__name__}: {exc}. "
                "Create unpicklable state (clients, locks, files) lazily inside the hooks, or "
                "define __getstate__/__setstate__"
            ) from exc

    async def _call_hook(self, target: Any, phase: str, hook: str) -> tuple[HookCall, CtxState]:
        before = CtxState.of(target.ctx)
        recorder = HookRecorder(target, hook)
        ray_call: Literal["run_callback", "run_callback_sync"] = (
            "run_callback_sync" if hook in SYNC_HOOKS else "run_callback"
        )
        surfaced: BaseException | None = None
        start = time.perf_counter()
        with recorder:
            try:
                if ray_call == "run_callback_sync":
                    await in_daemon_thread(
                        lambda: target.run_callback_sync(hook), f"{hook}:{phase}"
                    )
                elif recorder.awaited:
                    await target.run_callback(hook)
                else:
                    # Ray calls a plain-def hook inline on the replica's event loop; run it
                    # on an event loop of its own so a hook that blocks cannot block ours
                    # (the runner's timeout still applies).
                    await in_daemon_thread(
                        lambda: asyncio.run(target.run_callback(hook)), f"{hook}:{phase}"
                    )
            except asyncio.CancelledError:
                raise  # the runner's timeout (or its caller) cancelled us: not the hook's error
            except BaseException as exc:
                surfaced = exc
        call = HookCall(
            phase=phase,
            callback=self.callback_class.__qualname__,
            hook=hook,
            ray_call=ray_call,
            awaited=recorder.awaited,
            on_worker_copy=target is not self.instance,
            returned=recorder.returned,
            raised=recorder.raised,
            surfaced=surfaced,
            changed=before.changed_fields(getattr(target, "ctx", MISSING)),
            duration_s=time.perf_counter() - start,
        )
        if surfaced is not None:
            note = cloud_error_note(recorder.raised or surfaced)
            if note is not None:  # Ray's message does not name the bucket
                surfaced.add_note(f"[reference_runner] {note}")
            self.calls.append(call)
            raise surfaced
        return call, before

    def _finish(
        self,
        call: HookCall,
        before: CtxState,
        target: Any,
        placement_group_required: bool,
    ) -> dict[str, Any] | None:
        if call.on_worker_copy:
            self.calls.append(dataclasses.replace(call, lost=call.changed))
            return None
        ctx = self._ctx_of(target, call.phase, call.hook)
        problems = ctx_field_problems(ctx, placement_group_required=placement_group_required)
        if problems:
            self.calls.append(call)
            raise CallbackReturnError(
                f"{self.callback_class.__qualname__}.{call.hook} (phase {call.phase!r}) left "
                + "; ".join(problems),
                callback=f"{self.callback_class.__module__}:{self.__qualname__}",
                phase=call.phase,
            )
        mapped, unmapped = data_from_ctx(before, ctx, call.changed)
        self.calls.append(dataclasses.replace(call, mapped=mapped, unmapped=unmapped))
        return mapped or None


def _with_shippable_config(instance: Any) -> Any:
    """``instance``, or a shallow copy of it whose ``llm_config`` has no ``callbacks``
    (see :meth:`CallbackBaseAdapter._shipped_copy`)."""
    config = vars(instance).get("llm_config") if hasattr(instance, "__dict__") else None
    if config is None or not getattr(config, "callbacks", None):
        return instance
    if not hasattr(config, "model_copy"):
        return instance
    clone = copy.copy(instance)
    vars(clone)["llm_config"] = config.model_copy(update={"callbacks": []})
    return clone


def _fresh_adapter(
    callback_class: type,
    callback_kwargs: Mapping[str, Any],
    raise_error_on_callback: bool,
    ship_download_hook: bool,
) -> CallbackBaseAdapter:
    return CallbackBaseAdapter(
        callback_class,
        callback_kwargs=callback_kwargs,
        raise_error_on_callback=raise_error_on_callback,
        ship_download_hook=ship_download_hook,
    )


__all__ = [
    "AWAITED_HOOKS",
    "HOOK_PHASES",
    "ON_AFTER_NODE_INIT",
    "ON_BEFORE_DOWNLOAD",
    "ON_BEFORE_NODE_INIT",
    "PHASE_HOOKS",
    "RAY_CONSTRUCTOR_KEYWORDS",
    "SYNC_HOOKS",
    "CallbackBaseAdapter",
    "HookCall",
    "RayCallbackContractError",
    "construct_as_ray",
    "is_callback_base_class",
    "ray_constructor_kwargs",
    "resolve_callback_base_class",
]
