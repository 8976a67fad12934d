"""Unknown phase names for ``phases.unknown-names``: what a later Ray release could emit.

:func:`unknown_phase_schedule` places unknown names before each of the six real phases, for
one ``initialize_node`` run with all of them interleaved. The names are the hand-picked
:data:`FUTURE_NAMES` (names a release could plausibly add), a few near misses of real phase
names, and names generated from a fixed seed in two shapes: ``pre_x``/``post_x`` names
(``(pre|post)_[a-z]{2,10}(_[a-z]{2,8})?``) and arbitrary identifiers
(``[a-z][a-z0-9_]{0,20}``, shortest and longest included). The seed is fixed, so every run
(and every certificate) tries the same names; the count is bounded by the caller.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Final

from reference_runner import PHASES

#: Unknown names a later Ray release could plausibly add, each before the phase it would
#: neighbour; always tried, before any generated name.
FUTURE_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "pre_initialization": ("pre_validation",),
    "pre_download": ("x",),
    "post_placement_group": ("post_engine_init",),
    "post_initialization": ("shutdown",),
}

#: The generator's seed: the same names on every run.
SEED: Final = 20_260_601

_LOWER: Final = string.ascii_lowercase
_IDENT_TAIL: Final = _LOWER + string.digits + "_"


def _near_misses() -> Iterator[str]:
    """Names one edit away from a real phase: a suffix added, the prefix swapped."""
    for phase in PHASES:
        yield f"{phase}_v2"
        head, _, rest = phase.partition("_")
        yield f"{'post' if head == 'pre' else 'pre'}_{rest}"


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(_LOWER, k=rng.randint(low, high)))


def _prefixed(rng: random.Random) -> str:
    """A ``(pre|post)_[a-z]{2,10}(_[a-z]{2,8})?`` name."""
    name = f"{rng.choice(('pre', 'post'))}_{_word(rng, 2, 10)}"
    return f"{name}_{_word(rng, 2, 8)}" if rng.random() < 0.5 else name


def _identifier(rng: random.Random) -> str:
    """A ``[a-z][a-z0-9_]{0,20}`` name."""
    return rng.choice(_LOWER) + "".join(rng.choices(_IDENT_TAIL, k=rng.randint(0, 20)))


def generated_names(count: int, *, seed: int = SEED) -> list[str]:
    """``count`` distinct unknown names (none of them a real phase, none hand-picked): the
    near misses first, then the shortest and the longest identifier, then the two random
    shapes alternately, from ``seed``."""
    taken = set(PHASES) | {n for names in FUTURE_NAMES.values() for n in names}
    rng = random.Random(seed)
    fixed = [*_near_misses(), "q", "z" + "9_" * 10]
    out: list[str] = []
    shape = 0
    while len(out) < count:
        if fixed:
            name = fixed.pop(0)
        else:
            name = _prefixed(rng) if shape % 2 == 0 else _identifier(rng)
            shape += 1
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def unknown_phase_schedule(generated: int, *, seed: int = SEED) -> dict[str, list[str]]:
    """For each real phase, the unknown names to call the callback with right before it:
    :data:`FUTURE_NAMES` where they belong, then ``generated`` names from
    :func:`generated_names` dealt round-robin over the six phases."""
    if generated < 0:
        raise ValueError(f"generated must be >= 0, got {generated}")
    schedule = {phase: list(FUTURE_NAMES.get(phase, ())) for phase in PHASES}
    for i, name in enumerate(generated_names(generated, seed=seed)):
        schedule[PHASES[i % len(PHASES)]].append(name)
    return schedule
