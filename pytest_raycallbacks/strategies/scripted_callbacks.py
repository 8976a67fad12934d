"""Scripted callbacks: a :class:`CallbackScript` says what a generated callback does in each
phase, and so what the runner must do with each call; strategies draw return values,
scripts and the callables built from them.

Contract: :meth:`CallbackScript.expected` is the reference runner's outcome for a phase
(``"raise"``, ``"none"``, ``"merge"`` or ``"reject"``); :meth:`CallbackScript.build` makes a
fresh callable (function or instance, sync or async) that follows the script and records
the phases it got in ``.calls``. Imports ``hypothesis``; nothing here imports Ray.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, cast

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_runner.reserved import reserved_key_problem

from .data import JSON_LEAVES, JSON_VALUES, PLAIN_KEYS, invalid_reserved_items, valid_reserved_items
from .phase_names import known_phases

Outcome = Literal["none", "merge", "reject", "raise"]


class ScriptedError(Exception):
    """Raised by a scripted callback when its script says so (among built-in types)."""


ERROR_TYPES: Final[tuple[type[Exception], ...]] = (
    ValueError,
    RuntimeError,
    KeyError,
    OSError,
    ScriptedError,
)


def is_accepted_return(value: Any) -> bool:
    """What the runner merges: a mapping with ``str`` keys whose reserved keys hold valid
    values. (``None`` is accepted too, and merges nothing.)"""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        return False
    return all(reserved_key_problem(k, v) is None for k, v in value.items())


@dataclass(frozen=True)
class CallbackScript:
    """What a generated callback does, and so what the runner must do with each call.

    ``returns`` in every phase but those of ``returns_in``; ``raises`` (an ``Exception``
    type, or ``None``) in the phases of ``raise_in`` (``None``: every phase), before
    returning; ``is_async``: a coroutine function (or ``async __call__``); ``kind``:
    ``"function"`` or ``"instance"`` (an object with ``__call__``). :meth:`expected`
    gives the runner's outcome for a phase; :meth:`build` makes the callable.
    """

    returns: Any = None
    returns_in: Mapping[str, Any] = field(default_factory=dict)
    is_async: bool = False
    kind: Literal["function", "instance"] = "function"
    raises: type[Exception] | None = None
    raise_in: frozenset[str] | None = None

    def return_for(self, phase: str) -> Any:
        """What the callback returns in ``phase`` (if it does not raise)."""
        return self.returns_in.get(phase, self.returns)

    def raises_in(self, phase: str) -> bool:
        """Whether the callback raises in ``phase``."""
        return self.raises is not None and (self.raise_in is None or phase in self.raise_in)

    def expected(self, phase: str) -> Outcome:
        """``"raise"`` (the runner re-raises the callback's error), ``"none"`` (nothing to
        merge), ``"merge"`` (the mapping is merged into ``data``) or ``"reject"`` (the
        runner raises ``CallbackReturnError`` and merges nothing)."""
        if self.raises_in(phase):
            return "raise"
        value = self.return_for(phase)
        if value is None:
            return "none"
        return "merge" if is_accepted_return(value) else "reject"

    def build(self) -> ScriptedCallback:
        """A fresh callable following this script; it appends each phase to ``.calls``."""
        if self.kind == "instance":
            return _AsyncScripted(self) if self.is_async else _SyncScripted(self)
        return _scripted_function(self)


class ScriptedCallback(Protocol):
    """A callable built from a :class:`CallbackScript`; ``calls`` lists the phases it got."""

    script: CallbackScript
    calls: list[str]

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> Any: ...


def _act(script: CallbackScript, calls: list[str], phase: str) -> Any:
    calls.append(phase)
    if script.raises is not None and script.raises_in(phase):
        raise script.raises(f"scripted {script.raises.__name__} in phase {phase!r}")
    return script.return_for(phase)


class _SyncScripted:
    def __init__(self, script: CallbackScript) -> None:
        self.script = script
        self.calls: list[str] = []

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> Any:
        return _act(self.script, self.calls, phase)

    def __repr__(self) -> str:
        return f"<scripted callback instance {self.script!r}>"


class _AsyncScripted(_SyncScripted):
    async def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> Any:  # type: ignore[override]
        return _act(self.script, self.calls, phase)


def _scripted_function(script: CallbackScript) -> ScriptedCallback:
    calls: list[str] = []
    function: Callable[..., Any]
    if script.is_async:

        async def scripted_async(phase: str, config: Any, data: dict[str, Any]) -> Any:
            return _act(script, calls, phase)

        function = scripted_async
    else:

        def scripted(phase: str, config: Any, data: dict[str, Any]) -> Any:
            return _act(script, calls, phase)

        function = scripted
    setattr(function, "script", script)  # noqa: B010 - a function's attributes
    setattr(function, "calls", calls)  # noqa: B010
    return cast(ScriptedCallback, function)


ReturnKind = Literal["any", "none", "mapping", "invalid"]


def callback_returns(
    kind: ReturnKind = "any", *, placement_groups: SearchStrategy[Any] | None = None
) -> SearchStrategy[Any]:
    """A value for a callback to return.

    ``"none"``: ``None``. ``"mapping"``: a mapping the runner merges (a ``dict`` or a
    read-only ``MappingProxyType``, with ``str`` keys: plain keys with JSON-like values,
    maybe some valid reserved items). ``"invalid"``: something the runner rejects with
    ``CallbackReturnError``: a non-mapping (bool, int, float, str, bytes, list, tuple,
    set, list of pairs), a mapping with a non-``str`` key, or one with a reserved key of
    the wrong type. ``"any"``: any of these.
    """
    if kind == "none":
        return st.none()
    if kind == "mapping":
        plain = st.dictionaries(PLAIN_KEYS, JSON_VALUES, max_size=3)
        reserved = st.lists(
            valid_reserved_items(placement_groups=placement_groups), max_size=2
        ).map(dict)
        merged = st.builds(lambda a, b: {**a, **b}, plain, reserved)
        return st.one_of(merged, merged.map(types.MappingProxyType))
    if kind == "invalid":
        return st.one_of(
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=6),
            st.binary(max_size=4),
            st.lists(JSON_LEAVES, max_size=2),
            st.tuples(JSON_LEAVES),
            st.frozensets(st.integers(), max_size=2),
            st.tuples(PLAIN_KEYS, JSON_LEAVES).map(lambda pair: [pair]),
            st.builds(
                lambda key, extra: {key: 1, **extra},
                st.one_of(st.integers(), st.none(), st.tuples(st.integers())),
                st.dictionaries(PLAIN_KEYS, JSON_LEAVES, max_size=2),
            ),
            invalid_reserved_items().map(lambda item: dict([item])),
        )
    return st.one_of(
        callback_returns("none"),
        callback_returns("mapping", placement_groups=placement_groups),
        callback_returns("invalid"),
    )


@st.composite
def callback_scripts(
    draw: st.DrawFn,
    *,
    returns: ReturnKind | SearchStrategy[Any] = "any",
    asynchronous: bool | None = None,
    raises: bool | None = False,
    kinds: Sequence[Literal["function", "instance"]] = ("function", "instance"),
    vary_by_phase: bool = False,
) -> CallbackScript:
    """A :class:`CallbackScript`: what a callback returns (``returns``: a
    :func:`callback_returns` kind or a strategy of values), whether it is async
    (``asynchronous``; ``None``: either), whether it raises (``raises``: never with
    ``False``, in one to three phases or in every phase with ``True``, either with
    ``None``), its ``kinds``, and with ``vary_by_phase`` other returns in some known
    phases."""
    values = callback_returns(returns) if isinstance(returns, str) else returns
    phase_returns: Mapping[str, Any] = {}
    if vary_by_phase:
        phase_returns = draw(st.dictionaries(known_phases(), values, max_size=3))
    error: type[Exception] | None = None
    raise_in: frozenset[str] | None = None
    if raises is True or (raises is None and draw(st.booleans())):
        error = draw(st.sampled_from(ERROR_TYPES))
        raise_in = draw(st.none() | st.frozensets(known_phases(), min_size=1, max_size=3))
    return CallbackScript(
        returns=draw(values),
        returns_in=phase_returns,
        is_async=draw(st.booleans()) if asynchronous is None else asynchronous,
        kind=draw(st.sampled_from(list(kinds))),
        raises=error,
        raise_in=raise_in,
    )


def callbacks(
    *,
    returns: ReturnKind | SearchStrategy[Any] = "any",
    asynchronous: bool | None = None,
    raises: bool | None = False,
    kinds: Sequence[Literal["function", "instance"]] = ("function", "instance"),
    vary_by_phase: bool = False,
) -> SearchStrategy[ScriptedCallback]:
    """A fresh callable built from :func:`callback_scripts` (same arguments); its
    ``.script`` says what the runner must do with each call (:meth:`CallbackScript.
    expected`) and ``.calls`` records the phases it got. Drawing scripts and calling
    :meth:`CallbackScript.build` in the test gives clearer falsifying examples."""
    return callback_scripts(
        returns=returns,
        asynchronous=asynchronous,
        raises=raises,
        kinds=kinds,
        vary_by_phase=vary_by_phase,
    ).map(CallbackScript.build)
