"""Hypothesis strategies for property tests of callbacks and of code around them.

Four families, each documented with what it generates (``docs/strategies.md`` has a
guide and a worked downstream test):

* phases: :func:`known_phases`, :func:`unknown_phases`, :func:`phases`,
  :func:`phase_sequences`;
* configs: :func:`callback_paths`, :func:`runtime_envs`, :func:`engine_kwargs`,
  :func:`placement_group_configs`, :func:`llm_configs`;
* ``data``: :func:`download_choices`, :func:`reserved_values`,
  :func:`valid_reserved_items`, :func:`invalid_reserved_items`, :func:`data_dicts`,
  :func:`placement_group_stand_ins`;
* callbacks: :func:`callback_returns`, :func:`callback_scripts`, :func:`callbacks`
  (callables described by a :class:`CallbackScript` that says what the runner must do
  with each call).

Generated values are small on purpose (short lists, few keys), so a property runs its
examples in well under a second. This module imports ``hypothesis``; the plugin module
(``pytest_raycallbacks.plugin``) never imports it. Nothing here imports Ray.
"""

from __future__ import annotations

import string
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, cast

from hypothesis import strategies as st

from reference_runner import PHASES, TINY_MODEL_PATH, LLMConfig, NodeModelDownloadable
from reference_runner.config import PlacementGroupConfig
from reference_runner.reserved import (
    DOWNLOAD_RESULT,
    EXTRA_INIT_KWARGS,
    LOCAL_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RESERVED_KEY_SET,
    RUNTIME_ENV,
    SKIP_DEFAULT_INIT,
    SYSTEM_KEYS,
    WORKER_NODE_DOWNLOAD_MODEL,
    reserved_key_problem,
)

from .sample_callbacks import SAMPLE_CALLBACKS

SearchStrategy = st.SearchStrategy

#: Reserved keys a callback may set (every reserved key but the system's ``download_result``).
CALLBACK_KEYS: Final = tuple(sorted(RESERVED_KEY_SET - SYSTEM_KEYS))
#: Placement strategies Ray knows.
PLACEMENT_STRATEGIES: Final = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
_NEAR_MISS_PHASES: Final = tuple(
    sorted(
        {
            *(p.upper() for p in PHASES),
            *(p.replace("_", "-") for p in PHASES),
            *(p.replace("_", "") for p in PHASES),
            *(f"{p} " for p in PHASES),
            *(p[:-1] for p in PHASES),
            "pre_init",
            "post_init",
            "pre_warmup",
            "post_shutdown",
            "pre_placement_group",
            "post_engine_init",
            "",
        }
        - set(PHASES)
    )
)

# ---------------------------------------------------------------------- phases


def known_phases() -> SearchStrategy[str]:
    """One of :data:`reference_runner.PHASES`, the phases ``initialize_node`` emits."""
    return st.sampled_from(PHASES)


def unknown_phases() -> SearchStrategy[str]:
    """A ``str`` that is never in :data:`~reference_runner.PHASES`: near misses of the real
    names (``"PRE_DOWNLOAD"``, ``"pre-download"``, ``"pre_download "``, ``"post_init"``,
    ``""``), plausible future phases (``"pre_warmup"``, ``"post_<word>"``) and short
    arbitrary text. A callback must ignore such names (future phases)."""
    return st.one_of(
        st.sampled_from(_NEAR_MISS_PHASES),
        st.from_regex(r"(pre|post)_[a-z]{1,8}(_[a-z]{1,6})?", fullmatch=True),
        st.text(max_size=10),
    ).filter(lambda name: name not in PHASES)


def phases(*, include_unknown: bool = False) -> SearchStrategy[str]:
    """A known phase; with ``include_unknown=True``, a known or an unknown one (about half
    each, see :func:`unknown_phases`)."""
    return st.one_of(known_phases(), unknown_phases()) if include_unknown else known_phases()


def phase_sequences(
    *, include_unknown: bool = True, max_unknown: int = 3
) -> SearchStrategy[list[str]]:
    """Every phase of :data:`~reference_runner.PHASES`, in order, with up to
    ``max_unknown`` unknown names inserted anywhere (none without ``include_unknown``):
    what ``initialize_node`` emits today, and what a later version may emit."""
    if not include_unknown or max_unknown <= 0:
        return st.just(list(PHASES))
    inserts = st.lists(
        st.tuples(st.integers(0, len(PHASES)), unknown_phases()), max_size=max_unknown
    )

    def weave(extra: list[tuple[int, str]]) -> list[str]:
        out: list[str] = []
        for index in range(len(PHASES) + 1):
            out.extend(name for at, name in extra if at == index)
            if index < len(PHASES):
                out.append(PHASES[index])
        return out

    return inserts.map(weave)


# ---------------------------------------------------------------------- configs


def callback_paths(
    *, importable: bool = True, form: Literal["colon", "dot", "any"] = "any"
) -> SearchStrategy[str]:
    """A callback import path in the ``"pkg.mod:attr"`` or ``"pkg.mod.attr"`` form.

    ``importable=True`` (default): one of :data:`~pytest_raycallbacks.sample_callbacks.
    SAMPLE_CALLBACKS`, so ``load_callback`` returns a working callback. ``False``: a
    well-formed path whose top-level package (``raycallbacks_absent_*``) does not exist, so
    ``LLMConfig`` accepts it and ``load_callback`` raises ``CallbackLoadError``.
    """
    if importable:
        colon = st.sampled_from(SAMPLE_CALLBACKS)
    else:
        ident = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
        colon = st.builds(
            lambda pkg, mods, attr: f"raycallbacks_absent_{pkg}.{'.'.join(mods)}:{attr}",
            ident,
            st.lists(ident, min_size=1, max_size=2),
            ident,
        )
    if form == "colon":
        return colon
    dot = colon.map(lambda path: path.replace(":", "."))
    return dot if form == "dot" else st.one_of(colon, dot)


_ENV_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)
_ENV_VALUES = st.text(alphabet=string.ascii_letters + string.digits + "-_./:", max_size=8)


def runtime_envs() -> SearchStrategy[dict[str, Any]]:
    """A runtime env dict Ray accepts (``ray.runtime_env.RuntimeEnv(**env)`` succeeds) and
    that installs nothing: optional ``env_vars`` (str to str) and optional ``config``
    (``setup_timeout_seconds``); possibly empty."""
    return st.fixed_dictionaries(
        {},
        optional={
            "env_vars": st.dictionaries(_ENV_NAMES, _ENV_VALUES, max_size=3),
            "config": st.fixed_dictionaries({"setup_timeout_seconds": st.integers(1, 600)}),
        },
    )


@st.composite
def engine_kwargs(draw: st.DrawFn, *, max_devices: int = 4) -> dict[str, Any]:
    """Engine arguments ``LLMConfig`` accepts: ``tensor_parallel_size`` and
    ``pipeline_parallel_size`` (each present or absent, product at most ``max_devices``),
    and maybe ``max_model_len``, ``dtype``, ``enforce_eager``."""
    tensor = draw(st.integers(1, max_devices))
    pipeline = draw(st.integers(1, max(1, max_devices // tensor)))
    out: dict[str, Any] = {}
    if tensor > 1 or draw(st.booleans()):
        out["tensor_parallel_size"] = tensor
    if pipeline > 1 or draw(st.booleans()):
        out["pipeline_parallel_size"] = pipeline
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "max_model_len": st.sampled_from([256, 2048, 4096]),
                "dtype": st.sampled_from(["auto", "float16", "bfloat16"]),
                "enforce_eager": st.booleans(),
            },
        )
    )
    return {**out, **extra}


def placement_group_configs(num_devices: int | None = None) -> SearchStrategy[PlacementGroupConfig]:
    """A valid ``PlacementGroupConfig``: one bundle per device (``num_devices``, or 1 to 4
    when ``None``), each ``{"GPU": 1.0}`` plus maybe some CPUs, and a Ray strategy."""
    counts = st.just(num_devices) if num_devices is not None else st.integers(1, 4)
    bundle = st.builds(
        lambda cpus: {"GPU": 1.0, **({"CPU": float(cpus)} if cpus else {})},
        st.integers(0, 4),
    )
    return counts.flatmap(
        lambda n: st.builds(
            PlacementGroupConfig,
            bundles=st.lists(bundle, min_size=n, max_size=n),
            strategy=st.sampled_from(PLACEMENT_STRATEGIES),
        )
    )


@st.composite
def llm_configs(
    draw: st.DrawFn,
    *,
    model_id: str | SearchStrategy[str] | None = None,
    callbacks: SearchStrategy[list[str]] | None = None,
    max_devices: int = 4,
    accelerator_types: Sequence[str] = (),
    model_cache_dir: str | None = None,
) -> LLMConfig:
    """A valid ``LLMConfig`` that round-trips through JSON and YAML.

    ``model_id``: the bundled tiny model (:data:`reference_runner.TINY_MODEL_PATH`) by
    default, or a given id or strategy of ids. ``callbacks``: up to three importable paths
    from :func:`callback_paths` by default. Also :func:`engine_kwargs` (at most
    ``max_devices`` GPUs), no or a matching :func:`placement_group_configs`, no or a
    :func:`runtime_envs`, and an accelerator type from ``accelerator_types`` (default:
    none, so a cluster without accelerator labels can place the group).
    """
    if model_id is None:
        model = TINY_MODEL_PATH
    elif isinstance(model_id, str):
        model = model_id
    else:
        model = draw(model_id)
    kwargs = draw(engine_kwargs(max_devices=max_devices))
    devices = kwargs.get("tensor_parallel_size", 1) * kwargs.get("pipeline_parallel_size", 1)
    specs: list[Any] = draw(
        callbacks if callbacks is not None else st.lists(callback_paths(), max_size=3)
    )
    return LLMConfig(
        model_id=model,
        callbacks=specs,
        engine_kwargs=kwargs,
        placement_group_config=draw(st.none() | placement_group_configs(devices)),
        runtime_env=draw(st.none() | runtime_envs()),
        accelerator_type=draw(st.sampled_from([None, *accelerator_types])),
        model_cache_dir=model_cache_dir,
    )


# ---------------------------------------------------------------------- data

_PLAIN_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda key: key not in RESERVED_KEY_SET
)
_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=6))
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_PLAIN_KEYS, inner, max_size=3)
    ),
    max_leaves=5,
)


def plain_keys() -> SearchStrategy[str]:
    """A short ``str`` key that is not reserved (``[a-z][a-z0-9_]{0,10}``)."""
    return _PLAIN_KEYS


def json_values() -> SearchStrategy[Any]:
    """A small JSON-like value: ``None``, bools, ints, short text, nested lists/dicts."""
    return _JSON_VALUES


def download_choices(*, as_name: bool | None = None) -> SearchStrategy[Any]:
    """A valid download choice: a :class:`~reference_runner.NodeModelDownloadable` member
    (``as_name=False``), its exact name (``True``) or either (``None``)."""
    members = st.sampled_from(list(NodeModelDownloadable))
    names = st.sampled_from(list(NodeModelDownloadable.__members__))
    if as_name is None:
        return st.one_of(members, names)
    return names if as_name else members


class PlacementGroupStandIn:
    """An object with a Ray placement group's shape (``id``, ``bundle_specs``, ``ready``,
    ``wait``) for checks that are only about types: the runner accepts it as a
    ``placement_group``; no cluster can schedule on it."""

    def __init__(self, group_id: str, bundle_specs: Sequence[Mapping[str, float]]) -> None:
        self._id = group_id
        self._bundle_specs = [dict(b) for b in bundle_specs]

    @property
    def id(self) -> str:
        """The stand-in's id (a real group's is a ``PlacementGroupID``)."""
        return self._id

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        """The bundles it claims to hold."""
        return [dict(b) for b in self._bundle_specs]

    def ready(self) -> None:
        """A real group returns an ObjectRef; a stand-in has nothing to wait for."""
        return None

    def wait(self, timeout_seconds: float = 30) -> bool:
        """A stand-in is never placed."""
        return False

    def __repr__(self) -> str:
        return f"PlacementGroupStandIn({self._id!r}, {self._bundle_specs!r})"


def placement_group_stand_ins() -> SearchStrategy[PlacementGroupStandIn]:
    """A :class:`PlacementGroupStandIn` with a random hex id and one to three GPU bundles."""
    return st.builds(
        PlacementGroupStandIn,
        st.from_regex(r"[0-9a-f]{8}", fullmatch=True),
        st.lists(st.just({"GPU": 1.0}), min_size=1, max_size=3),
    )


class _HalfShaped:
    """Has a placement group's ``id`` and ``bundle_specs`` but no ``ready``/``wait``."""

    id = "half"
    bundle_specs = ({"GPU": 1.0},)

    def __repr__(self) -> str:
        return "<object with id and bundle_specs but no ready/wait>"


_NOT_MAPPINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.text(max_size=3), st.integers()).map(lambda pair: [pair]),
)

_VALID: Final[Mapping[str, Callable[[], SearchStrategy[Any]]]] = {
    LOCAL_NODE_DOWNLOAD_MODEL: download_choices,
    WORKER_NODE_DOWNLOAD_MODEL: download_choices,
    RUNTIME_ENV: runtime_envs,
    EXTRA_INIT_KWARGS: lambda: st.dictionaries(_PLAIN_KEYS, _JSON_VALUES, max_size=3),
    SKIP_DEFAULT_INIT: st.booleans,
}


def _invalid_download_choice() -> SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([m.lower() for m in NodeModelDownloadable.__members__]),
        st.text(max_size=8).filter(lambda s: s not in NodeModelDownloadable.__members__),
        st.sampled_from(list(NodeModelDownloadable)).map(lambda m: [m]),
        st.sampled_from(list(NodeModelDownloadable)).map(lambda m: m.value),
    )


_INVALID: Final[Mapping[str, Callable[[], SearchStrategy[Any]]]] = {
    LOCAL_NODE_DOWNLOAD_MODEL: _invalid_download_choice,
    WORKER_NODE_DOWNLOAD_MODEL: _invalid_download_choice,
    PLACEMENT_GROUP: lambda: st.one_of(
        _NOT_MAPPINGS,
        st.just({"bundles": [{"GPU": 1}], "strategy": "PACK"}),
        st.just(PlacementGroupConfig(bundles=[{"GPU": 1}])),
        st.just(_HalfShaped()),
    ),
    RUNTIME_ENV: lambda: st.one_of(
        _NOT_MAPPINGS.filter(lambda v: not isinstance(v, dict)),
        st.sampled_from(
            [
                {1: "x"},
                {"env_vars": {"WORKERS": 4}},
                {"env_vars": "A=1"},
                {"env_vars": {1: "a"}},
                {"pip": 3},
                {"working_dir": 5},
                {"py_modules": "pkg"},
                {"excludes": "*.tmp"},
                {"config": 5},
                {"config": {"setup_timeout_seconds": "soon"}},
                {"conda": "env", "pip": ["requests"]},
            ]
        ),
    ),
    EXTRA_INIT_KWARGS: lambda: st.one_of(
        _NOT_MAPPINGS,
        st.dictionaries(st.integers(), _JSON_LEAVES, min_size=1, max_size=2),
        st.dictionaries(_PLAIN_KEYS, _JSON_LEAVES, max_size=2).map(types.MappingProxyType),
    ),
    SKIP_DEFAULT_INIT: lambda: st.one_of(
        st.none(),
        st.integers(0, 1),
        st.sampled_from(["true", "false", "", "yes"]),
        st.floats(0, 1),
    ),
    DOWNLOAD_RESULT: lambda: st.one_of(_NOT_MAPPINGS, st.dictionaries(_PLAIN_KEYS, _JSON_LEAVES)),
}


def reserved_values(
    key: str, *, valid: bool = True, placement_groups: SearchStrategy[Any] | None = None
) -> SearchStrategy[Any]:
    """A value for reserved ``key`` that ``reference_runner.reserved.reserved_key_problem``
    accepts (``valid=True``) or rejects (``valid=False``).

    A valid ``placement_group`` needs a real group, so it comes from ``placement_groups``
    (e.g. ``st.just(group)`` or :func:`placement_group_stand_ins`); without it, asking for
    one raises ``ValueError``, as does a valid ``download_result`` (only the system
    writes it).
    """
    if key not in RESERVED_KEY_SET:
        raise ValueError(f"{key!r} is not a reserved key; reserved: {sorted(RESERVED_KEY_SET)}")
    if not valid:
        return _INVALID[key]()
    if key == PLACEMENT_GROUP:
        if placement_groups is None:
            raise ValueError(
                "a valid placement_group needs a real group: pass placement_groups="
                "st.just(group) (or placement_group_stand_ins() for type-only checks)"
            )
        return placement_groups
    if key in SYSTEM_KEYS:
        raise ValueError(
            f"{key!r} is written by the system only; there is no valid value a callback may set"
        )
    return _VALID[key]()


def valid_reserved_items(
    keys: Collection[str] | None = None, *, placement_groups: SearchStrategy[Any] | None = None
) -> SearchStrategy[tuple[str, Any]]:
    """A ``(key, value)`` pair a callback may set and the runner accepts. ``keys``
    defaults to every reserved key but ``download_result``, and ``placement_group`` only
    when ``placement_groups`` is given."""
    chosen = _callback_keys(keys, placement_groups is not None)
    return st.sampled_from(chosen).flatmap(
        lambda key: st.tuples(st.just(key), reserved_values(key, placement_groups=placement_groups))
    )


def invalid_reserved_items(keys: Collection[str] | None = None) -> SearchStrategy[tuple[str, Any]]:
    """A ``(key, value)`` pair the runner must reject with ``CallbackReturnError``, whether
    returned or written into ``data`` in place: a reserved key (``keys``, default every one,
    ``download_result`` included) with a value of the wrong type or one Ray refuses (e.g.
    ``{"runtime_env": {"env_vars": {"WORKERS": 4}}}``)."""
    chosen = sorted(RESERVED_KEY_SET if keys is None else keys)
    unknown = set(chosen) - RESERVED_KEY_SET
    if unknown:
        raise ValueError(f"not reserved keys: {sorted(unknown)}")
    return st.sampled_from(chosen).flatmap(
        lambda key: st.tuples(st.just(key), reserved_values(key, valid=False))
    )


def _callback_keys(keys: Collection[str] | None, with_group: bool) -> list[str]:
    chosen = (
        sorted(keys)
        if keys is not None
        else [k for k in CALLBACK_KEYS if with_group or k != PLACEMENT_GROUP]
    )
    bad = set(chosen) - set(CALLBACK_KEYS)
    if bad:
        raise ValueError(f"not reserved keys a callback may set: {sorted(bad)}")
    return chosen


@st.composite
def data_dicts(
    draw: st.DrawFn,
    *,
    valid: bool | None = True,
    placement_groups: SearchStrategy[Any] | None = None,
    max_plain_keys: int = 3,
) -> dict[str, Any]:
    """A shared ``data`` dict: up to ``max_plain_keys`` non-reserved keys with JSON-like
    values, plus reserved keys.

    ``valid=True``: every reserved key holds a value the runner accepts (no
    ``download_result``; ``placement_group`` only with ``placement_groups``).
    ``valid=False``: at least one reserved key holds a value the runner rejects (see
    :func:`invalid_reserved_items`), the others valid. ``None``: either.
    """
    if valid is None:
        valid = draw(st.booleans())
    data: dict[str, Any] = draw(st.dictionaries(_PLAIN_KEYS, _JSON_VALUES, max_size=max_plain_keys))
    with_group = placement_groups is not None
    for key in draw(st.sets(st.sampled_from(_callback_keys(None, with_group)), max_size=3)):
        data[key] = draw(reserved_values(key, placement_groups=placement_groups))
    if not valid:
        for key, value in draw(st.lists(invalid_reserved_items(), min_size=1, max_size=2)):
            data[key] = value
    return data


# ---------------------------------------------------------------------- callbacks

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
        plain = st.dictionaries(_PLAIN_KEYS, _JSON_VALUES, max_size=3)
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
            st.lists(_JSON_LEAVES, max_size=2),
            st.tuples(_JSON_LEAVES),
            st.frozensets(st.integers(), max_size=2),
            st.tuples(_PLAIN_KEYS, _JSON_LEAVES).map(lambda pair: [pair]),
            st.builds(
                lambda key, extra: {key: 1, **extra},
                st.one_of(st.integers(), st.none(), st.tuples(st.integers())),
                st.dictionaries(_PLAIN_KEYS, _JSON_LEAVES, max_size=2),
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


__all__ = [
    "CALLBACK_KEYS",
    "ERROR_TYPES",
    "PLACEMENT_STRATEGIES",
    "CallbackScript",
    "Outcome",
    "PlacementGroupStandIn",
    "ReturnKind",
    "ScriptedCallback",
    "ScriptedError",
    "callback_paths",
    "callback_returns",
    "callback_scripts",
    "callbacks",
    "data_dicts",
    "download_choices",
    "engine_kwargs",
    "invalid_reserved_items",
    "is_accepted_return",
    "json_values",
    "known_phases",
    "llm_configs",
    "phase_sequences",
    "phases",
    "placement_group_configs",
    "placement_group_stand_ins",
    "plain_keys",
    "reserved_values",
    "runtime_envs",
    "unknown_phases",
    "valid_reserved_items",
]
