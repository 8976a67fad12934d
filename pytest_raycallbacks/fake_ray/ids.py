"""Deterministic, Ray-shaped identifiers for the fake cluster.

Every id has the length and layout of its Ray counterpart, so code that parses or
validates ids (``NodeID.from_hex``, ``NodeAffinitySchedulingStrategy``) accepts them:

* node ids: 28 bytes (56 hex characters);
* placement group ids: 14 unique bytes + the 4-byte job id (36 hex characters);
* task ids: 8 unique bytes + 12 bytes of ``ff`` + job id (24 bytes);
* object ids: the task id + a 4-byte little-endian return index (28 bytes);
* actor ids: 12 unique bytes + job id (16 bytes).

Ids derive from the cluster's ``seed`` and a counter (BLAKE2b), so a test that runs the
same calls gets the same ids every time.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from typing import Final

JOB_ID: Final = bytes.fromhex("01000000")
_NIL_ACTOR_PART: Final = b"\xff" * 12


class IdFactory:
    """Makes ids for one fake cluster; thread-safe."""

    def __init__(self, seed: int | str = 0) -> None:
        self._seed = str(seed).encode()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _unique(self, kind: str, size: int) -> bytes:
        with self._lock:
            n = next(self._counter)
        return hashlib.blake2b(
            self._seed + b"/" + kind.encode() + b"/" + str(n).encode(), digest_size=size
        ).digest()

    def node_id(self, index: int) -> str:
        """The node id (hex) of the ``index``-th node ever added to the cluster."""
        return hashlib.blake2b(
            self._seed + b"/node/" + str(index).encode(), digest_size=28
        ).hexdigest()

    def placement_group_id(self) -> bytes:
        return self._unique("pg", 14) + JOB_ID

    def task_id(self) -> bytes:
        return self._unique("task", 8) + _NIL_ACTOR_PART + JOB_ID

    def put_task_id(self) -> bytes:
        """The pseudo task id ``ray.put`` objects belong to (unique per put)."""
        return b"\x00" + self._unique("put", 7) + _NIL_ACTOR_PART + JOB_ID

    def actor_id(self) -> bytes:
        return self._unique("actor", 12) + JOB_ID


def object_id(task_id: bytes, index: int) -> bytes:
    """The id of return value ``index`` (1-based, as Ray counts) of ``task_id``."""
    return task_id + index.to_bytes(4, "little")
