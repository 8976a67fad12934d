"""The callback runner: calls each callback in order and merges what it returns.

Contract (docs/design.md §The callback contract):

* ``await runner.run(phase, config)`` calls every callback as
  ``callback(phase, config, runner.data)`` in list order. Coroutine functions, and callables
  that return an awaitable, are awaited.
* A callback returns ``None`` or a mapping with ``str`` keys; the mapping is merged into
  ``data`` shallowly (later callbacks see, and may overwrite, what earlier ones set).
  Anything else raises :class:`CallbackReturnError` naming callback and phase, before
  anything of that return is merged.
* Reserved keys (:mod:`reference_runner.reserved`) are type-checked after every call,
  whether returned or written into ``data`` in place.
* A rejected call (one that ends in :class:`CallbackReturnError`: a bad return value, a bad
  in-place write, or such an error raised by a callback adapter) leaves ``data`` as it was
  before that call, under either error policy: its return is not merged and its in-place
  writes (``data[k] = v``, ``del``, ``update``, ``setdefault``, ``pop``, ...) are undone, so
  a rejected ``data["skip_default_init"] = "yes"`` never reaches the system. The keys and
  values are restored; a key the call deleted comes back at the end of the key order.
  Changes *inside* a value (``data["x"]["y"] = 1``) are not writes to ``data`` and stay.
* An ``Exception`` from a callback is re-raised as itself, with a note naming the callback
  and phase (``error_policy="raise"``), or logged and collected in :attr:`errors`
  (``error_policy="continue"``). What was set before the failure stays in ``data`` (the
  writes of a rejected call excepted, see above).
  ``BaseException``\\ s that are not ``Exception`` (``SystemExit``, ``KeyboardInterrupt``,
  ``CancelledError``) pass through untouched.
* With ``timeout_s=None`` callbacks run inline on the caller's loop (the fast path). With a
  timeout, each call runs on the runner's worker thread and event loop, bounded, and one
  that overruns raises :class:`CallbackTimeoutError` saying why (a blocked loop, an ignored
  cancellation, a blocking ``def``); the runner never waits on it again
  (:mod:`reference_runner.bounded` explains the choice and its cost). :meth:`close` stops
  the worker (also done when the runner is garbage-collected).
* With ``trace=True``, :attr:`trace` records every call: phase, callback, keys returned /
  added / changed / removed, duration and outcome, and :meth:`key_origins` says who set
  which key in which phase. ``strict=True`` traces and also compares one level inside
  ``dict``, ``list`` and ``set`` values, so in-place changes such as
  ``data["extra_init_kwargs"]["x"] = 1`` appear as ``changed``; it costs a snapshot of
  ``data`` per call. The default path (no timeout, no trace) keeps no per-call records:
  it is within 2x of a bare loop (``benchmarks/bench_runner.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from .bounded import BoundedCaller
from .errors import CallbackError, CallbackReturnError, CallbackTimeoutError
from .naming import describe_callback
from .reserved import RESERVED_KEY_SET, reserved_key_problem
from .shared_data import MISSING, SharedData, diff_writes
from .trace import SYSTEM, CallbackFailure, KeyOrigin, Outcome, TraceEntry

logger = logging.getLogger("reference_runner")

ErrorPolicy = Literal["raise", "continue"]
_ERROR_POLICIES: Final = ("raise", "continue")
_NOTE_PREFIX: Final = "[reference_runner] raised by callback"
_SNAPSHOT_TYPES: Final = (dict, list, set)
_reserved_isdisjoint: Final = RESERVED_KEY_SET.isdisjoint
_dict_update: Final = dict.update

_NO_WRITES: Final[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = ((), (), ())

# A raw trace record, kept as a tuple on the hot path and turned into TraceEntry lazily:
# (phase, index, returned keys, (added, changed, removed) by in-place writes,
#  keys changed inside their values (strict), duration, outcome, error)
_Record = tuple[
    str,
    int,
    tuple[str, ...],
    tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
    tuple[str, ...],
    float,
    Outcome,
    BaseException | None,
]


class CallbackRunner:
    """Runs callbacks at the phases of node initialization, sharing one ``data`` dict.

    Args:
        callbacks: the callables to run, in order (use :func:`load_callback` for specs).
        error_policy: ``"raise"`` (default) re-raises a callback's exception;
            ``"continue"`` logs it, records it in :attr:`errors` and goes on.
        timeout_s: bound on each call, in seconds, run on the runner's own worker thread
            and event loop (:mod:`reference_runner.bounded`; :meth:`close` stops it);
            ``None`` runs callbacks inline on the caller's loop, without bound.
        trace: record every call in :attr:`trace` (phase, callback, keys, duration,
            outcome). Off by default: the default path only checks and merges.
        strict: ``trace`` plus in-place changes one level inside ``data``'s values.
        data: initial content of the shared ``data`` dict.
    """

    def __init__(
        self,
        callbacks: Iterable[Callable[..., Any]],
        *,
        error_policy: ErrorPolicy = "raise",
        timeout_s: float | None = None,
        trace: bool = False,
        strict: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.callbacks: list[Callable[..., Any]] = list(callbacks)
        for index, callback in enumerate(self.callbacks):
            if not callable(callback):
                raise TypeError(
                    f"callback #{index} is {callback!r}, which is not callable; pass "
                    "functions or objects with __call__, or load specs with load_callback()"
                )
        if error_policy not in _ERROR_POLICIES:
            raise ValueError(f"error_policy must be one of {_ERROR_POLICIES}, got {error_policy!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be a positive number or None, got {timeout_s!r}")
        self.error_policy: ErrorPolicy = error_policy
        self.timeout_s = timeout_s
        self.strict = strict
        self.tracing = trace or strict
        self.data: SharedData = SharedData(data or {})
        self.data.take_writes()
        self._initial_keys = tuple(self.data)
        self.errors: list[CallbackFailure] = []
        self._names = [describe_callback(cb) for cb in self.callbacks]
        self._records: list[_Record] = []
        self._phases_run: list[str] = []
        self._bounded: BoundedCaller | None = None
        if timeout_s is not None:
            self._bounded = BoundedCaller(timeout_s)
            weakref.finalize(self, self._bounded.close)

    def close(self) -> None:
        """Stop the worker thread of the bounded path, if one was started (idempotent)."""
        if self._bounded is not None:
            self._bounded.close()

    # ------------------------------------------------------------------ running

    async def run(self, phase: str, config: Any) -> SharedData:
        """Run every callback for ``phase``; return the shared ``data`` dict."""
        if not isinstance(phase, str):
            raise TypeError(f"phase must be a str, got {type(phase).__name__}: {phase!r}")
        self._phases_run.append(phase)
        if self.timeout_s is not None or self.tracing:
            return await self._run_traced(phase, config)
        # The default path, inline: calls, checks and merge, no per-call records.
        data = self.data
        pending = data.pending_writes
        if pending:
            data.take_writes()  # writes made between runs are the system's
        update = _dict_update
        reserved = RESERVED_KEY_SET
        index = -1
        for callback in self.callbacks:
            index += 1
            try:
                result = callback(phase, config, data)
                # Both checks come before the merge and before the writes are taken, so
                # that a rejection can undo the whole call (see _fail).
                if result is not None:
                    if type(result) is dict:
                        for key in result:
                            if type(key) is not str or key in reserved:
                                self._check_returned(result, index, phase)
                                break
                    else:  # an awaitable or another mapping
                        result = await self._settle(result, index, phase)
                        if result is not None:
                            self._check_returned(result, index, phase)
                if pending:
                    self._check_in_place(pending, index, phase)
                    data.take_writes()
                if result is not None:
                    update(data, result)
            except Exception as exc:
                self._fail(phase, index, exc, 0.0, None)
        return data

    async def _run_traced(self, phase: str, config: Any) -> SharedData:
        """The general path: per-call bound, trace records (kept only when tracing),
        strict snapshots."""
        data = self.data
        pending = data.pending_writes
        tracing = self.tracing
        records = self._records if tracing else []
        bounded = self._bounded
        strict = self.strict
        perf = time.perf_counter
        for index, callback in enumerate(self.callbacks):
            if pending:
                records.append(self._system_record(phase))
            snapshot = _snapshot(data) if strict else None
            start = perf()
            try:
                if bounded is None:
                    result = callback(phase, config, data)
                    if result is not None and type(result) is not dict:
                        result = await self._settle(result, index, phase)
                else:
                    result = self._checked_result(
                        await bounded.call(
                            functools.partial(callback, phase, config, data),
                            callback=self._names[index],
                            phase=phase,
                        ),
                        index,
                        phase,
                    )
                # Both checks come before the merge and before the writes are taken, so
                # that a rejection can undo the whole call (see _fail).
                if result is not None:
                    self._check_returned(result, index, phase)
                prior = None
                if pending:
                    self._check_in_place(pending, index, phase)
                    prior = data.take_writes()
                returned: tuple[str, ...] = ()
                if result is not None:
                    _dict_update(data, result)
                    returned = tuple(result)
                writes = _NO_WRITES
                if prior is not None and tracing:
                    writes = diff_writes(prior, data)
            except Exception as exc:
                self._fail(phase, index, exc, start, snapshot)
                continue
            deep = _deep_changes(snapshot, data) if snapshot is not None else ()
            records.append((phase, index, returned, writes, deep, perf() - start, "ok", None))
        if pending:
            records.append(self._system_record(phase))
        return data

    def run_sync(self, phase: str, config: Any) -> SharedData:
        """Run :meth:`run` to completion from synchronous code (no running event loop)."""
        return asyncio.run(self.run(phase, config))

    async def run_all(self, config: Any, phases: Sequence[str] | None = None) -> SharedData:
        """Run ``phases`` (default: every phase of :data:`PHASES`) in order."""
        from .phases import PHASES

        for phase in PHASES if phases is None else phases:
            await self.run(phase, config)
        return self.data

    # ------------------------------------------------------------------ slow paths

    async def _settle(self, result: Any, index: int, phase: str) -> Mapping[str, Any] | None:
        """Await an awaitable result and check that the outcome is None or a mapping."""
        if inspect.isawaitable(result):
            result = await result
        return self._checked_result(result, index, phase)

    def _checked_result(self, result: Any, index: int, phase: str) -> Mapping[str, Any] | None:
        if result is None or isinstance(result, Mapping):
            return result
        raise CallbackReturnError(
            f"callback #{index} {self._names[index]} returned {_describe_value(result)} in "
            f"phase {phase!r}; a callback must return None or a mapping with str keys "
            "(e.g. {'extra_init_kwargs': {...}}) to merge into data",
            callback=self._names[index],
            phase=phase,
        )

    def _check_returned(self, result: Mapping[Any, Any], index: int, phase: str) -> None:
        """Raise CallbackReturnError for a non-str key or a reserved key of the wrong type."""
        for key in result:
            if type(key) is not str and not isinstance(key, str):
                raise self._bad_key_error(result, index, phase)
        if not _reserved_isdisjoint(result):
            self._check_reserved(result, index, phase, "returned")

    def _bad_key_error(
        self, result: Mapping[Any, Any], index: int, phase: str
    ) -> CallbackReturnError:
        bad = [key for key in result if not isinstance(key, str)]
        return CallbackReturnError(
            f"callback #{index} {self._names[index]} returned a mapping with non-str keys "
            f"{bad!r} in phase {phase!r}; data keys must be str (use e.g. {str(bad[0])!r})",
            callback=self._names[index],
            phase=phase,
            key=None,
        )

    def _check_reserved(self, values: Mapping[str, Any], index: int, phase: str, how: str) -> None:
        for key in RESERVED_KEY_SET.intersection(values):
            problem = reserved_key_problem(key, values[key])
            if problem is not None:
                raise CallbackReturnError(
                    f"callback #{index} {self._names[index]} {how} data[{key!r}] = "
                    f"{_describe_value(values[key])} in phase {phase!r}; reserved key "
                    f"{key!r} must be {problem}",
                    callback=self._names[index],
                    phase=phase,
                    key=key,
                )

    def _check_in_place(self, writes: Mapping[Any, Any], index: int, phase: str) -> None:
        data = self.data
        bad_keys = [key for key in writes if not isinstance(key, str)]
        if bad_keys:
            raise CallbackReturnError(
                f"callback #{index} {self._names[index]} wrote non-str keys {bad_keys!r} "
                f"into data in phase {phase!r}; data keys must be str",
                callback=self._names[index],
                phase=phase,
            )
        current = {key: data[key] for key in RESERVED_KEY_SET.intersection(writes) if key in data}
        if current:
            self._check_reserved(current, index, phase, "wrote in place")

    def _system_record(self, phase: str) -> _Record:
        writes = diff_writes(self.data.take_writes(), self.data)
        return (phase, -1, (), writes, (), 0.0, "ok", None)

    def _fail(
        self,
        phase: str,
        index: int,
        exc: Exception,
        start: float,
        snapshot: dict[str, Any] | None,
    ) -> None:
        name = self._names[index]
        rejected = isinstance(exc, CallbackReturnError)
        if (
            not rejected
            and not isinstance(exc, CallbackTimeoutError)
            and not any(note.startswith(_NOTE_PREFIX) for note in getattr(exc, "__notes__", ()))
        ):
            exc.add_note(f"{_NOTE_PREFIX} #{index} {name} in phase {phase!r}")
        data = self.data
        writes = _NO_WRITES
        if data.pending_writes:
            prior = data.take_writes()
            if rejected:
                _restore(data, prior)
            elif self.tracing:
                writes = diff_writes(prior, data)
        if self.tracing:
            outcome: Outcome = "timeout" if isinstance(exc, CallbackTimeoutError) else "error"
            deep = _deep_changes(snapshot, data) if snapshot is not None else ()
            duration = time.perf_counter() - start
            self._records.append((phase, index, (), writes, deep, duration, outcome, exc))
        if self.error_policy == "raise":
            raise exc
        logger.error(
            "callback #%d %s failed in phase %r: %s: %s",
            index,
            name,
            phase,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        self.errors.append(CallbackFailure(phase=phase, index=index, callback=name, error=exc))

    # ------------------------------------------------------------------ introspection

    @property
    def phases_run(self) -> tuple[str, ...]:
        """The phases :meth:`run` was called with, in order."""
        return tuple(self._phases_run)

    @property
    def trace(self) -> list[TraceEntry]:
        """Every call so far, in order, with the keys it returned, added, changed, removed.

        Needs ``trace=True`` (or ``strict=True``) when the runner was built.
        """
        if not self.tracing:
            raise RuntimeError(
                "this CallbackRunner was built without tracing; build it with "
                "CallbackRunner(callbacks, trace=True) (or strict=True) to record every call"
            )
        present = set(self._initial_keys)
        entries: list[TraceEntry] = []
        for phase, index, returned, writes, deep, duration, outcome, error in self._records:
            w_added, w_changed, w_removed = writes
            added, changed = list(w_added), list(w_changed)
            present.update(w_added)
            present.difference_update(w_removed)
            for key in returned:
                if key in w_added or key in w_changed:
                    continue
                (changed if key in present else added).append(key)
                present.add(key)
            changed.extend(key for key in deep if key not in added and key not in changed)
            entries.append(
                TraceEntry(
                    phase=phase,
                    index=index,
                    callback=SYSTEM if index < 0 else self._names[index],
                    returned=returned,
                    added=tuple(added),
                    changed=tuple(changed),
                    removed=w_removed,
                    duration_s=duration,
                    outcome=outcome,
                    error=error,
                )
            )
        return entries

    def key_origins(self) -> dict[str, KeyOrigin]:
        """For each key now in ``data``, the call that last added or changed it."""
        origins: dict[str, KeyOrigin] = {}
        for entry in self.trace:
            for key in entry.added + entry.changed:
                if key in self.data:
                    origins[key] = KeyOrigin(
                        key=key,
                        callback=entry.callback,
                        index=entry.index,
                        phase=entry.phase,
                        value=self.data[key],
                    )
            for key in entry.removed:
                origins.pop(key, None)
        return origins


def _snapshot(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: (value, value.copy() if isinstance(value, _SNAPSHOT_TYPES) else None)
        for key, value in data.items()
    }


def _deep_changes(snapshot: dict[str, Any], data: Mapping[str, Any]) -> tuple[str, ...]:
    changed = []
    for key, (value, copy) in snapshot.items():
        if copy is not None and data.get(key, MISSING) is value and value != copy:
            changed.append(key)
    return tuple(changed)


def _restore(data: SharedData, prior: Mapping[Any, Any]) -> None:
    """Put back the values ``prior`` recorded, without recording them as writes."""
    for key, before in prior.items():
        if before is MISSING:
            dict.pop(data, key, None)
        else:
            dict.__setitem__(data, key, before)


def _describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


__all__ = ["CallbackError", "CallbackRunner", "ErrorPolicy"]
