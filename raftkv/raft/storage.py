"""The read-only storage interface the core reads its durable log through, and a reference
in-memory implementation used by tests and the simulator.

The application writes to storage (entries and hard state from each ``Ready``); the core only
reads. Indices: ``entries(lo, hi)`` is the half-open range ``[lo, hi)``.
"""

from __future__ import annotations

from typing import Protocol

from raftkv.raft.errors import (
    Compacted,
    RaftInvariantError,
    Unavailable,
)
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta


class LogStorage(Protocol):
    """What the core needs to read from durable storage."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the membership at the last snapshot / conf change."""
        ...

    def entries(self, lo: int, hi: int, max_size: int = 0) -> list[Entry]:
        """Entries in ``[lo, hi)``, at least one, at most ``max_size`` bytes (0 = no bound).

        Raises:
            Compacted: ``lo`` is at or below the snapshot index.
            Unavailable: ``hi`` is beyond ``last_index() + 1``.
        """
        ...

    def term(self, index: int) -> int:
        """The term of entry ``index`` (the snapshot's term for the snapshot index)."""
        ...

    def first_index(self) -> int:
        """The first index still held as an entry (snapshot index + 1)."""
        ...

    def last_index(self) -> int:
        """The last index held (the snapshot index if the log is empty)."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot; may raise :class:`SnapshotTemporarilyUnavailable`."""
        ...


def limit_size(entries: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix of ``entries`` within ``max_size`` bytes, but never empty."""
    if max_size <= 0 or not entries:
        return entries
    total = entries[0].size()
    n = 1
    while n < len(entries):
        total += entries[n].size()
        if total > max_size:
            break
        n += 1
    return entries[:n]


class MemoryStorage:
    """An in-memory :class:`LogStorage` that the application (or the simulator) writes to.

    Invariant: ``self._ents[0]`` is a dummy entry whose index and term are the snapshot's;
    ``self._ents[i].index == self._ents[0].index + i`` for every ``i``.
    """

    def __init__(self) -> None:
        self.hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- LogStorage -------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.meta.conf_state

    def entries(self, lo: int, hi: int, max_size: int = 0) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"index {lo} compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} beyond last index {self.last_index()}")
        if len(self._ents) == 1:  # only the dummy entry
            return []
        return limit_size(self._ents[lo - offset:hi - offset], max_size)

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise Compacted(f"index {index} compacted")
        if index - offset >= len(self._ents):
            raise Unavailable(f"index {index} beyond last index {self.last_index()}")
        return self._ents[index - offset].term

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes by the application ----------------------------------------------------
    def set_hard_state(self, hs: HardState) -> None:
        """Persist the hard state."""
        self.hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by ``snap``; ignores a snapshot older than the current one."""
        if snap.meta.index <= self._snapshot.meta.index:
            return
        self._snapshot = snap
        self._ents = [Entry(term=snap.meta.term, index=snap.meta.index)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the applied state at ``index`` (which must be held)."""
        if index <= self._snapshot.meta.index:
            return self._snapshot
        if index > self.last_index():
            raise RaftInvariantError(f"snapshot {index} beyond last index {self.last_index()}")
        meta = SnapshotMeta(index=index, term=self.term(index), conf_state=conf_state)
        self._snapshot = Snapshot(meta=meta, data=data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries before ``compact_index``; it becomes the dummy entry."""
        offset = self._ents[0].index
        if compact_index <= offset:
            return
        if compact_index > self.last_index():
            raise RaftInvariantError(f"compact {compact_index} beyond last {self.last_index()}")
        i = compact_index - offset
        self._ents = [Entry(term=self._ents[i].term, index=compact_index), *self._ents[i + 1:]]

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append entries, truncating any existing suffix that they overwrite."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return  # everything is already covered by the snapshot
        if first > entries[0].index:
            entries = entries[first - entries[0].index:]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise RaftInvariantError(
                f"missing log entry: last {self.last_index()}, appending at {entries[0].index}")
        del self._ents[offset:]
        self._ents.extend(entries)
