"""Recording every call a callback gets, transparently (docs/design.md §The kit).

:class:`Recorder` wraps a callback and records each call as a :class:`Call`: the data the
callback saw, what it returned or raised, what it wrote in place, what it did to the config,
and how long it took. The wrapper passes the runner's very ``data`` dict and ``config``,
keeps the callback synchronous or asynchronous as it was, and re-raises what the callback
raises. It can also call the callback with extra (unknown) phase names right before a real
phase, which is how the kit exercises future phases inside a real run.

Around every call it also takes a :func:`~conformance.process_state.snapshot` of the process
state (the Ray connection, ``os.environ``, the working directory, ``sys.path``), records what
the call changed (:attr:`Call.process`) and the modules it imported (:attr:`Call.modules`),
and puts the state back right after the call, so the rest of the run, and every later check,
start from the state the kit set up (``reconnect`` is the cluster's way to connect the
driver again, see :func:`~conformance.process_state.restore`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reference_runner import PHASES, LLMConfig

from .process_state import ProcessChange, ProcessState, changes, restore, snapshot

_INNER_TYPES: Final = (dict, list, set)


@dataclass
class Call:
    """One call of the callback under test.

    ``before`` is a shallow copy of ``data`` as the callback received it, ``inner`` holds
    copies of its ``dict``/``list``/``set`` values (to see changes made inside them),
    ``after`` is ``data`` right after the call (before the runner merges the return value).
    ``finished`` is false for a call that never returned (it timed out). ``process`` is what
    the call changed in the process state (put back right after it), ``modules`` the modules
    it imported (name -> file, ``None`` for a module without one).
    """

    phase: str
    known: bool
    before: dict[str, Any]
    inner: dict[str, Any]
    config_before: dict[str, Any]
    started: float
    returned: Any = None
    error: BaseException | None = None
    after: dict[str, Any] | None = None
    config_changes: tuple[str, ...] = ()
    duration_s: float | None = None
    process: tuple[ProcessChange, ...] = ()
    modules: dict[str, str | None] = field(default_factory=dict)
    _state: ProcessState | None = field(default=None, repr=False, compare=False)
    _modules_before: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.duration_s is not None

    def in_place(self) -> tuple[list[str], list[str], list[str]]:
        """Keys the call added, replaced (another object) or removed, writing ``data``
        directly rather than returning them."""
        after = self.after if self.after is not None else self.before
        added = [k for k in after if k not in self.before]
        removed = [k for k in self.before if k not in after]
        changed = [k for k in after if k in self.before and after[k] is not self.before[k]]
        return added, changed, removed

    def changed_inside(self) -> list[str]:
        """Keys whose value is the same object but whose content the call changed."""
        after = self.after if self.after is not None else self.before
        return [
            k
            for k, copy_ in self.inner.items()
            if k in after and after[k] is self.before[k] and _differs(after[k], copy_)
        ]

    def returned_mapping(self) -> Mapping[Any, Any]:
        """The returned mapping, or an empty one when it returned ``None`` or a non-mapping."""
        return self.returned if isinstance(self.returned, Mapping) else {}


class Recorder:
    """Wraps a callback, recording each call (see :class:`Call`).

    ``extra_phases`` maps a real phase to names to call the callback with just before it;
    what those calls return is merged into ``data`` as the runner would. ``reconnect``
    connects the driver to the cluster again after a call disconnected it (``None``:
    ``ray.init(address=<the address it had>)``).
    """

    def __init__(
        self,
        callback: Callable[..., Any],
        *,
        extra_phases: Mapping[str, Sequence[str]] | None = None,
        reconnect: Callable[[], Any] | None = None,
    ) -> None:
        self.callback = callback
        self.calls: list[Call] = []
        self.extra_phases = dict(extra_phases or {})
        self.reconnect = reconnect
        self.wrapper = self._make_wrapper()

    # ------------------------------------------------------------------ wrapping

    def _make_wrapper(self) -> Callable[..., Any]:
        callback = self.callback
        is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
            getattr(callback, "__call__", None)  # noqa: B004 - the method itself
        )
        if is_async:

            async def async_wrapper(phase: str, config: Any, data: dict[str, Any]) -> Any:
                for extra in self.extra_phases.get(phase, ()):
                    await self._call_async(extra, config, data, merge=True)
                return await self._call_async(phase, config, data, merge=False)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            def sync_wrapper(phase: str, config: Any, data: dict[str, Any]) -> Any:
                extras = self.extra_phases.get(phase, ())
                if extras:
                    return self._sync_with_extras(extras, phase, config, data)
                return self._call_sync(phase, config, data, merge=False)

            wrapper = sync_wrapper
        # Name the wrapper as the runner names the callback, so that error notes and traces
        # point at the user's code, not at the kit.
        if inspect.isfunction(callback) or inspect.ismethod(callback):
            functools.update_wrapper(wrapper, callback)
        else:
            wrapper.__module__ = type(callback).__module__
            wrapper.__qualname__ = f"{type(callback).__qualname__} instance"
        return wrapper

    def _sync_with_extras(
        self, extras: Sequence[str], phase: str, config: Any, data: dict[str, Any]
    ) -> Any:
        for extra in extras:
            result = self._call_sync(extra, config, data, merge=True)
            if inspect.isawaitable(result):  # a sync callable handing back an awaitable
                return self._await_then(extras, phase, config, data, result)
        return self._call_sync(phase, config, data, merge=False)

    async def _await_then(
        self,
        extras: Sequence[str],
        phase: str,
        config: Any,
        data: dict[str, Any],
        pending: Awaitable[Any],
    ) -> Any:
        await pending
        for extra in extras[1:]:
            result = self._call_sync(extra, config, data, merge=True)
            if inspect.isawaitable(result):
                await result
        result = self._call_sync(phase, config, data, merge=False)
        return await result if inspect.isawaitable(result) else result

    def _call_sync(self, phase: str, config: Any, data: dict[str, Any], *, merge: bool) -> Any:
        call = self._start(phase, config, data)
        try:
            result = self.callback(phase, config, data)
        except BaseException as exc:
            self._finish(call, config, data, error=exc)
            raise
        if inspect.isawaitable(result):
            return self._settle(call, result, config, data, merge)
        self._finish(call, config, data, result=result)
        if merge:
            _merge(result, data, phase)
        return result

    async def _call_async(
        self, phase: str, config: Any, data: dict[str, Any], *, merge: bool
    ) -> Any:
        call = self._start(phase, config, data)
        try:
            result = self.callback(phase, config, data)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            self._finish(call, config, data, error=exc)
            raise
        self._finish(call, config, data, result=result)
        if merge:
            _merge(result, data, phase)
        return result

    async def _settle(
        self, call: Call, pending: Awaitable[Any], config: Any, data: dict[str, Any], merge: bool
    ) -> Any:
        try:
            result = await pending
        except BaseException as exc:
            self._finish(call, config, data, error=exc)
            raise
        self._finish(call, config, data, result=result)
        if merge:
            _merge(result, data, call.phase)
        return result

    # ------------------------------------------------------------------ recording

    def _start(self, phase: str, config: Any, data: dict[str, Any]) -> Call:
        before = dict(data)
        call = Call(
            phase=phase,
            known=phase in PHASES,
            before=before,
            inner={k: _copy_inner(v) for k, v in before.items() if isinstance(v, _INNER_TYPES)},
            config_before=config_state(config),
            started=0.0,
            _state=snapshot(),
            _modules_before=frozenset(sys.modules.copy()),
        )
        self.calls.append(call)
        call.started = time.perf_counter()
        return call

    def _finish(
        self,
        call: Call,
        config: Any,
        data: dict[str, Any],
        *,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        call.duration_s = time.perf_counter() - call.started
        self._settle_process(call)
        call.returned = result
        call.error = error
        call.after = dict(data)
        after = config_state(config)
        call.config_changes = tuple(
            sorted(
                k
                for k in set(after) | set(call.config_before)
                if not _same(after.get(k), call.config_before.get(k))
            )
        )

    def _settle_process(self, call: Call) -> None:
        """Record what the call changed in the process and imported; put the state back."""
        state, call._state = call._state, None
        if state is None:
            return
        modules = sys.modules.copy()
        call.modules = {
            name: getattr(modules[name], "__file__", None)
            for name in sorted(set(modules) - call._modules_before)
        }
        call._modules_before = frozenset()
        call.process = tuple(changes(state, snapshot()))
        restore(state, reconnect=self.reconnect)


def _merge(result: Any, data: dict[str, Any], phase: str) -> None:
    """Merge what a call for an extra phase returned, as the runner would."""
    if result is None:
        return
    if not isinstance(result, Mapping) or not all(isinstance(k, str) for k in result):
        raise TypeError(
            f"in the unknown phase {phase!r} the callback returned {type(result).__name__} "
            f"{result!r:.80}; a callback must return None or a mapping with str keys"
        )
    data.update(result)


def _copy_inner(value: Any) -> Any:
    try:
        return copy.copy(value)
    except Exception:
        return value


def _differs(current: Any, copy_: Any) -> bool:
    try:
        return bool(current != copy_)
    except Exception:
        return False


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def config_state(config: Any) -> dict[str, Any]:
    """A deep snapshot of an ``LLMConfig`` (the callbacks by identity), to tell whether a
    call changed it."""
    if not isinstance(config, LLMConfig):
        return {"<config>": id(config)}
    try:
        state = copy.deepcopy(config.model_dump(exclude={"callbacks"}))
    except Exception:  # a value that does not deep-copy: compare what we can
        state = dict(config.model_dump(exclude={"callbacks"}))
    state["callbacks"] = tuple(id(cb) for cb in config.callbacks)
    return state
