"""Strategies of phase names: the phases ``initialize_node`` emits, and names it may emit later.

Contract: :func:`known_phases` draws from :data:`reference_runner.PHASES`;
:func:`unknown_phases` never does; :func:`phases` mixes them on request;
:func:`phase_sequences` keeps every known phase in order and weaves unknown ones in.
Imports ``hypothesis``; nothing here imports Ray.
"""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_runner import PHASES

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
