"""The storage seam of the state machine: a sorted byte-key/byte-value store.

The whole replicated state lives in a :class:`Backend`; the state machine keeps only indexes
in memory that it can rebuild from the backend. A LevelDB implementation lives in
``raftkv.storage``; :class:`MemoryBackend` is the reference implementation for tests and the
simulator.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class WriteBatch:
    """An ordered list of puts and deletes to apply atomically.

    Invariants:
        * ``ops`` is applied in order; a later op on the same key wins.
        * a ``None`` value is a delete.
    """

    ops: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def put(self, key: bytes, value: bytes) -> None:
        """Record a put of ``key``."""
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        """Record a delete of ``key`` (a no-op if absent)."""
        self.ops.append((key, None))

    def __len__(self) -> int:
        return len(self.ops)


class Backend(Protocol):
    """A sorted map from bytes to bytes with atomic batched writes."""

    def get(self, key: bytes) -> bytes | None:
        """Return the value stored under ``key``, or ``None``."""
        ...

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` pairs with ``start <= key < end`` in ascending key order.

        The range is half-open; ``end=None`` means no upper bound. The iteration reflects
        the state when it started, even if the caller writes while iterating.
        """
        ...

    def write(self, batch: WriteBatch) -> None:
        """Apply every op of ``batch`` atomically: all of them or none."""
        ...


class MemoryBackend:
    """An in-memory :class:`Backend`: a dict plus a sorted list of its keys.

    Invariants:
        * ``_keys`` is sorted, has no duplicates, and holds exactly the keys of ``_data``.
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        """See :meth:`Backend.get`."""
        return self._data.get(key)

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """See :meth:`Backend.scan`; iterates over a copy of the matching keys."""
        lo = bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        keys = self._keys[lo:hi] if hi > lo else []
        data = self._data
        return iter([(k, data[k]) for k in keys])

    def write(self, batch: WriteBatch) -> None:
        """See :meth:`Backend.write`. Cannot fail halfway: it only touches memory."""
        for key, value in batch.ops:
            if value is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value

    def __len__(self) -> int:
        return len(self._data)
