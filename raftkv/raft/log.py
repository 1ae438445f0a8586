"""The Raft log: storage (durable prefix) plus the unstable suffix, with commit and apply marks."""

from __future__ import annotations

from raftkv.raft.errors import Compacted, RaftInvariantError, Unavailable
from raftkv.raft.storage import LogStorage, limit_size
from raftkv.raft.types import Entry, Snapshot
from raftkv.raft.unstable import Unstable


class RaftLog:
    """The log as the core sees it.

    Invariants: ``applied <= committed <= last_index()``; ``committed`` never decreases;
    entries at or below ``committed`` are never truncated (Raft §5.3, Log Matching and
    State Machine Safety).
    """

    __slots__ = ("applied", "committed", "max_next_ents_size", "storage", "unstable")

    def __init__(self, storage: LogStorage, max_next_ents_size: int = 0) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (f"RaftLog(committed={self.committed}, applied={self.applied}, "
                f"unstable.offset={self.unstable.offset}, "
                f"len(unstable)={len(self.unstable.entries)})")

    # -- indices and terms -------------------------------------------------------------
    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def persisted_last_index(self) -> int:
        """The last index known durable (what a leader may count its own vote for)."""
        return min(self.storage.last_index(), self.unstable.offset - 1)

    def term(self, index: int) -> int:
        """Term of ``index``; 0 beyond the last index. Raises :class:`Compacted` below."""
        dummy = self.first_index() - 1
        if index < dummy:
            raise Compacted(f"index {index} compacted")
        if index > self.last_index():
            return 0
        t = self.unstable.maybe_term(index)
        if t is not None:
            return t
        return self.storage.term(index)

    def zero_term_on_err(self, index: int) -> int:
        try:
            return self.term(index)
        except (Compacted, Unavailable):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Is a log ending at (``last_index``, ``term``) at least as up-to-date (§5.4.1)?"""
        my_term = self.last_term()
        return term > my_term or (term == my_term and last_index >= self.last_index())

    # -- appending -----------------------------------------------------------------------
    def maybe_append(self, index: int, log_term: int, committed: int,
                     ents: tuple[Entry, ...]) -> int | None:
        """Follower side of AppendEntries (§5.3). Returns the last new index, or None if
        the entry at ``index`` does not have term ``log_term`` (the consistency check)."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        conflict = self.find_conflict(ents)
        if conflict != 0:
            if conflict <= self.committed:
                raise RaftInvariantError(
                    f"entry {conflict} conflicts with committed entry (committed "
                    f"{self.committed})")
            self.append(ents[conflict - index - 1:])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry] | tuple[Entry, ...]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RaftInvariantError(f"append after {after} is below committed "
                                     f"{self.committed}")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or is new); 0 if none.

        Existing matching entries are never truncated: a delayed or duplicated append
        must not delete entries the follower already acknowledged (dissertation §3.5).
        """
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest ``(i, term(i))`` with ``i <= index`` and ``term(i) <= term``.

        Used for fast backtracking: a follower rejecting an append at ``index`` suggests
        where the leader should probe next, skipping a whole term at a time.
        """
        while index > 0:
            try:
                t = self.term(index)
            except (Compacted, Unavailable):
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    # -- reading -------------------------------------------------------------------------
    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def has_next_committed_ents(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def next_committed_ents(self) -> list[Entry]:
        """Committed entries not yet applied, bounded by ``max_next_ents_size``."""
        lo = max(self.applied + 1, self.first_index())
        if self.committed + 1 > lo:
            return self.slice(lo, self.committed + 1, self.max_next_ents_size)
        return []

    def entries(self, lo: int, max_size: int = 0) -> list[Entry]:
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_size)

    def slice(self, lo: int, hi: int, max_size: int = 0) -> list[Entry]:
        """Entries in ``[lo, hi)`` within ``max_size`` bytes (at least one)."""
        if lo > hi:
            raise RaftInvariantError(f"invalid slice {lo} > {hi}")
        first = self.first_index()
        if lo < first:
            raise Compacted(f"index {lo} compacted (first {first})")
        if hi > self.last_index() + 1:
            raise RaftInvariantError(f"slice [{lo},{hi}) out of bound {self.last_index()}")
        if lo == hi:
            return []
        ents: list[Entry] = []
        off = self.unstable.offset
        if lo < off:
            ents = self.storage.entries(lo, min(hi, off), max_size)
            if len(ents) < min(hi, off) - lo:  # size limit hit
                return ents
        if hi > off:
            ents = ents + self.unstable.slice(max(lo, off), hi)
        return limit_size(ents, max_size)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- marks ---------------------------------------------------------------------------
    def commit_to(self, to_commit: int) -> None:
        if self.committed < to_commit:
            if self.last_index() < to_commit:
                raise RaftInvariantError(f"commit {to_commit} beyond last {self.last_index()}")
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit ``max_index`` if it is newer and of ``term`` (Raft §5.4.2: a leader
        commits only entries of its own term by counting replicas)."""
        if max_index > self.committed and self.zero_term_on_err(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if self.committed < index or index < self.applied:
            raise RaftInvariantError(f"applied {index} out of range [{self.applied}, "
                                     f"{self.committed}]")
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def restore(self, snap: Snapshot) -> None:
        """Replace the log by a snapshot received from the leader."""
        self.committed = snap.meta.index
        self.unstable.restore(snap)
