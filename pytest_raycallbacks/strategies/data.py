"""Strategies of the shared ``data`` dict: plain keys and JSON-like values, reserved keys
with values the runner accepts or rejects, whole ``data`` dicts, and placement group
stand-ins.

Contract: a "valid" value is one ``reference_runner.reserved.reserved_key_problem``
accepts, an "invalid" one a value it rejects (so the runner raises
``CallbackReturnError``). :data:`PLAIN_KEYS`, :data:`JSON_LEAVES` and :data:`JSON_VALUES`
are the building blocks the other strategy modules share. Imports ``hypothesis``; nothing
here imports Ray.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_runner import NodeModelDownloadable
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
)

from .configs import runtime_envs

#: Reserved keys a callback may set (every reserved key but the system's ``download_result``).
CALLBACK_KEYS: Final = tuple(sorted(RESERVED_KEY_SET - SYSTEM_KEYS))


#: Short ``str`` keys that are not reserved.
PLAIN_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda key: key not in RESERVED_KEY_SET
)
#: JSON scalars: ``None``, bools, small ints, short text.
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=6))
#: Small JSON-like values: leaves, and lists / dicts of them nested a little.
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(PLAIN_KEYS, inner, max_size=3)
    ),
    max_leaves=5,
)


def plain_keys() -> SearchStrategy[str]:
    """A short ``str`` key that is not reserved (``[a-z][a-z0-9_]{0,10}``)."""
    return PLAIN_KEYS


def json_values() -> SearchStrategy[Any]:
    """A small JSON-like value: ``None``, bools, ints, short text, nested lists/dicts."""
    return JSON_VALUES


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
    EXTRA_INIT_KWARGS: lambda: st.dictionaries(PLAIN_KEYS, JSON_VALUES, max_size=3),
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
        st.dictionaries(st.integers(), JSON_LEAVES, min_size=1, max_size=2),
        st.dictionaries(PLAIN_KEYS, JSON_LEAVES, max_size=2).map(types.MappingProxyType),
    ),
    SKIP_DEFAULT_INIT: lambda: st.one_of(
        st.none(),
        st.integers(0, 1),
        st.sampled_from(["true", "false", "", "yes"]),
        st.floats(0, 1),
    ),
    DOWNLOAD_RESULT: lambda: st.one_of(_NOT_MAPPINGS, st.dictionaries(PLAIN_KEYS, JSON_LEAVES)),
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
    data: dict[str, Any] = draw(st.dictionaries(PLAIN_KEYS, JSON_VALUES, max_size=max_plain_keys))
    with_group = placement_groups is not None
    for key in draw(st.sets(st.sampled_from(_callback_keys(None, with_group)), max_size=3)):
        data[key] = draw(reserved_values(key, placement_groups=placement_groups))
    if not valid:
        for key, value in draw(st.lists(invalid_reserved_items(), min_size=1, max_size=2)):
            data[key] = value
    return data
