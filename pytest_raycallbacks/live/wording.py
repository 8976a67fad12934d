"""How the live cluster's messages name things: nodes and exceptions.

Contract: :func:`short_id` is the prefix of a Ray id that messages show (12 hex digits are
unique among a cluster's nodes and short enough to read); :func:`error_text` is an
exception as ``Type: message`` (optionally its first line only). Standard library only:
the keeper process and Ray workers import this module too.
"""

from __future__ import annotations

from typing import Final

SHORT_ID_LEN: Final = 12


def short_id(ray_id: str) -> str:
    """The first :data:`SHORT_ID_LEN` characters of a node (or other Ray) id, for messages."""
    return ray_id[:SHORT_ID_LEN]


def error_text(exc: BaseException, *, one_line: bool = False) -> str:
    """``exc`` as ``Type: message``, the way every live-cluster message quotes an error;
    ``one_line`` keeps only the message's first line (for one-line summaries)."""
    message = str(exc).strip()
    if one_line:
        message = message.splitlines()[0] if message else ""
    return f"{type(exc).__name__}: {message}"
