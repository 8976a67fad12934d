"""The shared ``data`` dict: a plain ``dict`` that remembers which keys were written.

Reads cost exactly what they cost on a ``dict``. Writes through the mapping API
(``data[k] = v``, ``del``, ``update``, ``setdefault``, ``pop``, ``popitem``, ``clear``,
``|=``) remember the key and its value before the first write since the last
:meth:`SharedData.take_writes`, so the runner can validate reserved keys written in place
and attribute every added, changed or removed key to the callback that did it, without
copying the dict around each call. Changes *inside* a value (``data["x"]["y"] = 1``) are not
writes to ``data`` and are not seen here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

#: The package's one "no value" sentinel: a key absent from ``data`` in a recorded prior
#: state, an attribute an object does not have (``getattr(obj, name, MISSING)``).
MISSING: Final[Any] = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


class SharedData(dict[str, Any]):
    """A ``dict`` whose writes are recorded until :meth:`take_writes` collects them."""

    __slots__ = ("_prior",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prior: dict[Any, Any] = {}

    def _remember(self, key: Any) -> None:
        if key not in self._prior:
            self._prior[key] = dict.get(self, key, MISSING)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._remember(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._remember(key)
        super().__delitem__(key)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        incoming = dict(*args, **kwargs)
        for key in incoming:
            self._remember(key)
        super().update(incoming)

    def __ior__(self, other: Any) -> SharedData:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self._remember(key)
        return super().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._remember(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._prior.setdefault(key, value)
        return key, value

    def clear(self) -> None:
        for key in self:
            self._remember(key)
        super().clear()

    @property
    def has_writes(self) -> bool:
        """True when keys were written since the last :meth:`take_writes`."""
        return bool(self._prior)

    def take_writes(self) -> dict[Any, Any]:
        """Return ``{key: value before the first write}`` for every key written since the
        last call (``MISSING`` if the key was absent), and start a new record."""
        prior = dict(self._prior)
        self._prior.clear()  # cleared in place: the runner keeps a reference to it
        return prior

    @property
    def pending_writes(self) -> dict[Any, Any]:
        """The live record of writes since the last :meth:`take_writes` (do not modify)."""
        return self._prior

    def __reduce__(self) -> tuple[Any, ...]:
        return (SharedData, (dict(self),))

    def __copy__(self) -> SharedData:
        return SharedData(self)


def diff_writes(
    prior: Mapping[Any, Any], current: Mapping[Any, Any]
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """Classify written keys as ``(added, changed, removed)`` given their prior values.

    A key rewritten with the very same object is not reported.
    """
    added: list[Any] = []
    changed: list[Any] = []
    removed: list[Any] = []
    for key, before in prior.items():
        after = current.get(key, MISSING)
        if before is MISSING:
            if after is not MISSING:
                added.append(key)
        elif after is MISSING:
            removed.append(key)
        elif after is not before:
            changed.append(key)
    return tuple(added), tuple(changed), tuple(removed)


def keys_of(items: Iterable[Any]) -> tuple[Any, ...]:
    """A tuple of keys, for trace records."""
    return tuple(items)
