"""The storage seam of the state machine: a sorted byte-key/byte-value store.

The whole replicated state lives in a :class:`Backend`; the state machine keeps only indexes
in memory that it can rebuild from the backend. A LevelDB implementation lives in
``raftkv.storage``; :class:`MemoryBackend` is the reference implementation for tests and the
simulator.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
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


class WriteBuffer:
    """A :class:`Backend` over another one that can hold writes back and merge them.

    Outside :meth:`hold` it passes everything through. Inside, each :meth:`write` is kept in
    one pending batch (and is readable through :meth:`get` at once) and the whole batch is
    written to the inner backend when the hold ends: many applied entries cost one backend
    write. A :meth:`scan` writes the pending batch first, so it sees everything. Each
    buffered write is a whole applied entry (its changes and its applied index), so writing
    them together keeps the backend a state some prefix of the log produced.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self._pending: WriteBatch | None = None
        self._overlay: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        """See :meth:`Backend.get`; a held write is seen."""
        if self._pending is not None and key in self._overlay:
            return self._overlay[key]
        return self.inner.get(key)

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """See :meth:`Backend.scan` (held writes are written first)."""
        self.flush()
        return self.inner.scan(start, end)

    def write(self, batch: WriteBatch) -> None:
        """See :meth:`Backend.write`; held until the end of :meth:`hold` if inside one."""
        if self._pending is None:
            self.inner.write(batch)
            return
        self._pending.ops.extend(batch.ops)
        self._overlay.update(batch.ops)

    def flush(self) -> None:
        """Write what is held (if anything) to the inner backend now."""
        pending = self._pending
        if pending is None or not pending.ops:
            return
        self._pending = WriteBatch()
        self._overlay.clear()
        self.inner.write(pending)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold writes back until the end of the ``with`` block, then write them as one."""
        if self._pending is not None:
            yield  # already holding: the outer block writes
            return
        self._pending = WriteBatch()
        try:
            yield
        finally:
            try:
                self.flush()
            finally:
                self._pending = None
                self._overlay.clear()
