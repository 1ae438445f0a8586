"""The not-yet-persisted suffix of the log."""

from __future__ import annotations

from raftkv.raft.types import Entry, Snapshot


class Unstable:
    """Entries (and possibly an incoming snapshot) not yet written to storage.

    Invariants:
        - ``entries[i].index == offset + i``;
        - if ``snapshot`` is set, ``offset == snapshot.meta.index + 1`` until more entries
          are appended after it;
        - everything below ``offset`` lives in storage (or is covered by ``snapshot``).
    """

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        """The first index, if a pending snapshot determines it."""
        if self.snapshot is not None:
            return self.snapshot.meta.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        """The last index held here, if any."""
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def maybe_term(self, index: int) -> int | None:
        """The term of ``index`` if this suffix (or its snapshot) knows it."""
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.meta.index == index:
                return self.snapshot.meta.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to ``index`` (of ``term``) are now in storage: drop them from here."""
        t = self.maybe_term(index)
        if t is None or t != term or index < self.offset:
            return
        del self.entries[:index + 1 - self.offset]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        """The pending snapshot at ``index`` is now in storage."""
        if self.snapshot is not None and self.snapshot.meta.index == index:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        """Replace everything by an incoming snapshot."""
        self.offset = snap.meta.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: list[Entry] | tuple[Entry, ...]) -> None:
        """Append ``ents``, dropping any suffix (here or in storage) they overwrite."""
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # The new entries replace everything here and part of storage: the storage
            # suffix is overwritten when these entries are persisted.
            self.offset = after
            self.entries = list(ents)
        else:
            del self.entries[after - self.offset:]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries in ``[lo, hi)``; the caller guarantees the bounds lie within this suffix."""
        return self.entries[lo - self.offset:hi - self.offset]
