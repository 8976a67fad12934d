"""Which model files a node downloads; mirrors Ray 2.60's ``NodeModelDownloadable``."""

from __future__ import annotations

import enum


class NodeModelDownloadable(enum.Enum):
    """Which files of the model a node downloads.

    Same members and semantics as ``ray.llm._internal.common.utils.download_utils``:
    falsy only for :attr:`NONE`; :meth:`union` returns the wider of two choices.
    """

    MODEL_AND_TOKENIZER = enum.auto()
    TOKENIZER_ONLY = enum.auto()
    EXCLUDE_SAFETENSORS = enum.auto()
    NONE = enum.auto()

    def __bool__(self) -> bool:
        return self is not NodeModelDownloadable.NONE

    def union(self, other: NodeModelDownloadable) -> NodeModelDownloadable:
        """Return the choice that downloads everything either of the two downloads."""
        for wider in _WIDEST_FIRST:
            if wider in (self, other):
                return wider
        return NodeModelDownloadable.NONE  # pragma: no cover - _WIDEST_FIRST is exhaustive

    @classmethod
    def coerce(cls, value: NodeModelDownloadable | str) -> NodeModelDownloadable:
        """Accept a member or its exact name (``"TOKENIZER_ONLY"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value in cls.__members__:
            return cls.__members__[value]
        raise ValueError(
            f"expected a NodeModelDownloadable or one of its names "
            f"{sorted(cls.__members__)}, got {value!r}"
        )


_WIDEST_FIRST = (
    NodeModelDownloadable.MODEL_AND_TOKENIZER,
    NodeModelDownloadable.EXCLUDE_SAFETENSORS,
    NodeModelDownloadable.TOKENIZER_ONLY,
    NodeModelDownloadable.NONE,
)
