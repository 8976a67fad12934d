"""Small, well-behaved callbacks with import paths, for generated configs.

:func:`pytest_raycallbacks.strategies.callback_paths` draws from :data:`SAMPLE_CALLBACKS`,
so an ``LLMConfig`` it generates loads and runs anywhere this package is installed (on a
Ray worker too). Each callback ignores phases it does not know. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any, Final


def ignore_everything(phase: str, config: Any, data: dict[str, Any]) -> None:
    """Returns ``None`` in every phase."""
    return None


def count_phases(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Counts the calls it gets in ``data["sample_phase_count"]``."""
    return {"sample_phase_count": data.get("sample_phase_count", 0) + 1}


def add_engine_flag(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    """In ``pre_engine_init``, adds ``sample_flag=True`` to ``extra_init_kwargs`` (keeping
    what earlier callbacks put there)."""
    if phase != "pre_engine_init":
        return None
    return {"extra_init_kwargs": {**data.get("extra_init_kwargs", {}), "sample_flag": True}}


async def async_note(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    """A coroutine function: in ``post_initialization``, sets ``sample_done=True``."""
    return {"sample_done": True} if phase == "post_initialization" else None


class PhaseRecorder:
    """Stateful (a class spec is instantiated with no arguments): records the phases."""

    def __init__(self) -> None:
        self.phases: list[str] = []

    def __call__(self, phase: str, config: Any, data: dict[str, Any]) -> None:
        self.phases.append(phase)


#: The import paths of the callbacks above, in the colon form.
SAMPLE_CALLBACKS: Final = tuple(
    f"{__name__}:{name}"
    for name in (
        "ignore_everything",
        "count_phases",
        "add_engine_flag",
        "async_note",
        "PhaseRecorder",
    )
)
