"""`DurableLogStorage`: the raft log, hard state and snapshot in LevelDB.

It implements :class:`raftkv.raft.storage.LogStorage` with exactly the semantics of the
reference :class:`~raftkv.raft.storage.MemoryStorage` (same results, same ``Compacted`` /
``Unavailable`` / ``RaftInvariantError`` cases; ``tests/storage`` runs one suite against
both), and adds the write side the application needs, each call one atomic, fsync'ed
LevelDB write batch:

* :meth:`~DurableLogStorage.save` ``(hard_state, entries, snapshot)`` persists one
  ``Ready``: the snapshot first (if newer), then the entries (overwriting a conflicting
  suffix), then the hard state;
* :meth:`~DurableLogStorage.create_snapshot`, :meth:`~DurableLogStorage.compact`,
  :meth:`~DurableLogStorage.set_conf_state`;
* ``append``, ``set_hard_state`` and ``apply_snapshot``, the ``MemoryStorage`` spellings
  of ``save``.

On disk (see :mod:`raftkv.storage.keys`) the log is ``offset`` (index and term of the last
compacted entry, the "dummy" entry of ``MemoryStorage``) plus entries ``offset+1 .. last``
under big-endian keys, so reopening reads four small records and seeks twice; it never
reads the log.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from raftkv.raft.errors import Compacted, RaftInvariantError, Unavailable
from raftkv.raft.storage import limit_size
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import codec, keys
from raftkv.storage.engine import Batch, Engine
from raftkv.storage.errors import CorruptionError

_DELETE_CHUNK = 10_000
"""Log keys deleted per write batch when compacting."""


@dataclass(slots=True)
class _LogState:
    """The small part of the log kept in memory; a copy is edited while staging a write.

    Invariants: ``offset <= last``; entries ``offset+1 .. last`` are on disk, no other log
    keys above ``offset``; ``snap_meta.index`` never decreases.
    """

    offset: int = 0
    offset_term: int = 0
    last: int = 0
    snap_meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    snap_len: int = 0

    def copy(self) -> _LogState:
        return _LogState(self.offset, self.offset_term, self.last, self.snap_meta,
                         self.snap_len)


class DurableLogStorage:
    """A :class:`~raftkv.raft.storage.LogStorage` that keeps the log in an :class:`Engine`.

    Thread-safe: one lock serializes every call, so a reader waits while a ``save`` is
    fsyncing. Reads of the last ``cache_entries`` entries (at most ``cache_bytes``), the
    hard state and the log bounds are served from memory.

    Invariants:
        * the in-memory state equals what is on disk after the last successful write;
        * ``_tail`` holds the entries ``last - len(_tail) + 1 .. last`` (possibly none).
    """

    def __init__(self, engine: Engine, *, cache_entries: int = 4096,
                 cache_bytes: int = 16 << 20) -> None:
        """Open the log stored in ``engine`` (empty or written by a previous instance).

        Raises:
            CorruptionError: a record cannot be decoded, or the log has a gap.
        """
        self._engine = engine
        self._lock = threading.Lock()
        self._cache_entries = max(1, cache_entries)
        self._cache_bytes = cache_bytes
        self._tail: list[Entry] = []
        self._tail_bytes = 0
        self._snap_data: bytes | None = None
        self._hard_state = HardState()
        self._conf: tuple[int, ConfState] | None = None
        self._st = _LogState()
        self._load()

    # -- recovery ------------------------------------------------------------------------
    def _load(self) -> None:
        eng = self._engine
        raw = eng.get(keys.HARD_STATE)
        if raw is not None:
            self._hard_state = codec.decode_hard_state(raw)
        raw = eng.get(keys.CONF_STATE)
        if raw is not None:
            self._conf = codec.decode_conf_record(raw)
        st = self._st
        raw = eng.get(keys.LOG_OFFSET)
        if raw is not None:
            st.offset, st.offset_term = codec.decode_offset(raw)
        raw = eng.get(keys.SNAP_META)
        if raw is not None:
            st.snap_meta, st.snap_len = codec.decode_snapshot_record(raw)
        self._delete_below(st.offset + 1)  # left over by a crash during a compaction
        first_key = eng.first_key(keys.log_key(st.offset + 1), keys.LOG_END)
        last_key = eng.last_key(keys.log_key(st.offset + 1), keys.LOG_END)
        st.last = st.offset if last_key is None else keys.log_index(last_key)
        if first_key is not None and keys.log_index(first_key) != st.offset + 1:
            raise CorruptionError(f"raft log at {eng.path} starts at "
                                  f"{keys.log_index(first_key)}, expected {st.offset + 1}")

    def _delete_below(self, index: int) -> None:
        """Delete every log key below ``index`` (garbage under the offset), in chunks."""
        while True:
            batch = self._engine.batch(sync=False)
            for k in self._engine.keys(keys.LOG_START, keys.log_key(index)):
                batch.delete(k)
                if batch.count >= _DELETE_CHUNK:
                    break
            if batch.count == 0:
                return
            batch.commit()

    # -- LogStorage ----------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        """The hard state and the membership (snapshot's, or a newer :meth:`set_conf_state`)."""
        with self._lock:
            cs = self._st.snap_meta.conf_state
            if self._conf is not None and self._conf[0] > self._st.snap_meta.index:
                cs = self._conf[1]
            return self._hard_state, cs

    def entries(self, lo: int, hi: int, max_size: int = 0) -> list[Entry]:
        """See :meth:`LogStorage.entries`: ``[lo, hi)``, at most ``max_size`` bytes."""
        with self._lock:
            st = self._st
            if lo <= st.offset:
                raise Compacted(f"index {lo} compacted (first index {st.offset + 1})")
            if hi > st.last + 1:
                raise Unavailable(f"index {hi - 1} beyond last index {st.last}")
            if st.last == st.offset or lo >= hi:
                return []
            tail_start = st.last - len(self._tail) + 1
            if lo >= tail_start:
                return limit_size(self._tail[lo - tail_start:hi - tail_start], max_size)
            ents = self._read(lo, min(hi, tail_start), max_size)
            if hi <= tail_start or len(ents) < tail_start - lo:
                return ents
            return limit_size(ents + self._tail[:hi - tail_start], max_size)

    def _read(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries ``[lo, hi)`` from disk, stopping at ``max_size`` bytes (at least one)."""
        out: list[Entry] = []
        total = 0
        expect = lo
        for _, raw in self._engine.items(keys.log_key(lo), keys.log_key(hi)):
            e = codec.decode_entry(raw)
            if e.index != expect:
                raise CorruptionError(f"raft log at {self._engine.path}: found entry "
                                      f"{e.index} where {expect} belongs")
            total += e.size()
            if out and 0 < max_size < total:
                break
            out.append(e)
            expect += 1
        if not out or (expect < hi and (max_size <= 0 or total <= max_size)):
            raise CorruptionError(f"raft log at {self._engine.path}: entry {expect} missing")
        return out

    def term(self, index: int) -> int:
        """See :meth:`LogStorage.term`."""
        with self._lock:
            return self._term(index)

    def _term(self, index: int) -> int:
        st = self._st
        if index < st.offset:
            raise Compacted(f"index {index} compacted")
        if index > st.last:
            raise Unavailable(f"index {index} beyond last index {st.last}")
        if index == st.offset:
            return st.offset_term
        tail_start = st.last - len(self._tail) + 1
        if index >= tail_start:
            return self._tail[index - tail_start].term
        raw = self._engine.get(keys.log_key(index))
        if raw is None:
            raise CorruptionError(f"raft log at {self._engine.path}: entry {index} missing")
        return codec.decode_entry_term(raw)

    def first_index(self) -> int:
        """See :meth:`LogStorage.first_index`."""
        return self._st.offset + 1

    def last_index(self) -> int:
        """See :meth:`LogStorage.last_index`."""
        return self._st.last

    def snapshot(self) -> Snapshot:
        """The latest snapshot, its data read from disk on first use and then kept."""
        with self._lock:
            return Snapshot(meta=self._st.snap_meta, data=self._load_snap_data())

    def _read_snap_data(self, length: int) -> bytes:
        parts = [v for _, v in self._engine.items(keys.SNAP_DATA_START, keys.SNAP_DATA_END)]
        data = b"".join(parts)
        if len(data) != length:
            raise CorruptionError(f"snapshot data at {self._engine.path} has {len(data)} "
                                  f"bytes, expected {length}")
        return data

    # -- queries that are not part of LogStorage ------------------------------------------
    @property
    def hard_state(self) -> HardState:
        """The persisted hard state."""
        return self._hard_state

    def snapshot_meta(self) -> SnapshotMeta:
        """The latest snapshot's metadata, without loading its data."""
        return self._st.snap_meta

    # -- writes ----------------------------------------------------------------------------
    def save(self, hard_state: HardState | None = None, entries: Sequence[Entry] = (),
             snapshot: Snapshot | None = None, *, sync: bool = True) -> None:
        """Persist one ``Ready`` in one atomic, fsync'ed write.

        ``sync=False`` skips the fsync, for a ``Ready`` whose only change is the commit
        index (``Ready.must_sync`` false): losing it in a machine crash is safe, and it
        still reaches the disk before the next synced write (one write-ahead log).

        In order: install ``snapshot`` if it is newer than the current one (dropping the
        whole log, as :meth:`apply_snapshot`), append ``entries`` (as :meth:`append`), set
        ``hard_state``. When this returns, all of it is on disk; if it raises, none of it
        is applied in memory (and the caller must stop: the disk state is unknown).

        Raises:
            RaftInvariantError: ``entries`` leave a gap after the last index or are not
                consecutive (nothing is written).
            StorageError: the write failed.
        """
        with self._lock:
            st = self._st.copy()
            batch = self._engine.batch(sync=sync)
            snap_data: bytes | None = None
            if snapshot is not None and snapshot.meta.index > st.snap_meta.index:
                self._stage_snapshot(batch, st, snapshot)
                snap_data = snapshot.data
            appended = self._stage_append(batch, st, entries)
            if hard_state is not None:
                batch.put(keys.HARD_STATE, codec.encode_hard_state(hard_state))
            if batch.count == 0:
                return
            batch.commit()
            old_last, self._st = self._st.last, st
            if hard_state is not None:
                self._hard_state = hard_state
            if snap_data is not None:
                self._snap_data = snap_data
                self._tail, self._tail_bytes = [], 0
            self._cache(old_last, appended)
            if snap_data is not None:
                self._delete_below(st.offset + 1)  # the old log, now under the offset

    def _stage_snapshot(self, batch: Batch, st: _LogState, snap: Snapshot) -> None:
        """Stage installing ``snap``: new snapshot, offset at its index, no entries."""
        meta = snap.meta
        self._stage_snap_data(batch, st, meta, snap.data)
        for i in range(max(st.offset, meta.index) + 1, st.last + 1):
            batch.delete(keys.log_key(i))  # above the new offset: must go atomically
        st.offset, st.offset_term, st.last = meta.index, meta.term, meta.index
        batch.put(keys.LOG_OFFSET, codec.encode_offset(meta.index, meta.term))

    def _stage_snap_data(self, batch: Batch, st: _LogState, meta: SnapshotMeta,
                         data: bytes) -> None:
        """Stage the snapshot record and its data chunks, deleting the old extra chunks."""
        size = keys.CHUNK_BYTES
        new_chunks = -(-len(data) // size)
        old_chunks = -(-st.snap_len // size)
        view = memoryview(data)
        for i in range(new_chunks):
            batch.put(keys.snap_chunk_key(i), bytes(view[i * size:(i + 1) * size]))
        for i in range(new_chunks, old_chunks):
            batch.delete(keys.snap_chunk_key(i))
        batch.put(keys.SNAP_META, codec.encode_snapshot_record(meta, len(data)))
        st.snap_meta, st.snap_len = meta, len(data)

    def _stage_append(self, batch: Batch, st: _LogState,
                      entries: Sequence[Entry]) -> Sequence[Entry]:
        """Stage ``entries`` as :meth:`MemoryStorage.append` would; returns those written."""
        if not entries:
            return ()
        first = st.offset + 1
        if entries[-1].index < first:
            return ()  # everything is already covered by the snapshot
        if first > entries[0].index:
            entries = entries[first - entries[0].index:]
        start = entries[0].index
        if start > st.last + 1:
            raise RaftInvariantError(
                f"missing log entry: last {st.last}, appending at {start}")
        for i, e in enumerate(entries):
            if e.index != start + i:
                raise RaftInvariantError(f"entries not consecutive: {e.index} after "
                                         f"{start + i - 1}")
            batch.put(keys.log_key(e.index), codec.encode_entry(e))
        new_last = entries[-1].index
        for i in range(new_last + 1, st.last + 1):
            batch.delete(keys.log_key(i))  # the conflicting suffix beyond the new last
        st.last = new_last
        return entries

    def _cache(self, old_last: int, appended: Sequence[Entry]) -> None:
        """Update the tail cache after ``appended`` (ending at the new last) was written.

        Incremental: only the entries cut off or added are sized (summing the whole tail on
        every save was a tenth of a busy leader's CPU)."""
        if not appended:
            return
        tail = self._tail
        total = self._tail_bytes
        keep = 0
        if tail:
            old_start = old_last - len(tail) + 1
            keep = max(0, min(len(tail), appended[0].index - old_start))
            for e in tail[keep:]:
                total -= len(e.data) + 16
            del tail[keep:]
        tail.extend(appended)
        for e in appended:
            total += len(e.data) + 16
        self._trim_tail(tail, total)

    def _set_tail(self, tail: list[Entry]) -> None:
        """Keep the newest entries of ``tail`` within the cache limits (at least one)."""
        self._trim_tail(tail, sum(e.size() for e in tail))

    def _trim_tail(self, tail: list[Entry], total: int) -> None:
        drop = max(0, len(tail) - self._cache_entries)
        for e in tail[:drop]:
            total -= len(e.data) + 16
        while total > self._cache_bytes and drop < len(tail) - 1:
            total -= len(tail[drop].data) + 16
            drop += 1
        if drop:
            del tail[:drop]
        self._tail, self._tail_bytes = tail, total

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries, truncating any existing suffix they overwrite (one fsync)."""
        self.save(entries=entries)

    def set_hard_state(self, hs: HardState) -> None:
        """Persist the hard state (one fsync)."""
        self.save(hard_state=hs)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Install a received snapshot and drop the whole log; ignores an older snapshot."""
        self.save(snapshot=snap)

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the applied state at ``index`` (which must be held).

        Returns the current snapshot unchanged if ``index`` is not newer. The log is kept;
        call :meth:`compact` to drop entries.

        Raises:
            RaftInvariantError: ``index`` is beyond the last index.
            Compacted: ``index`` is below the first index (its term is gone).
        """
        with self._lock:
            st = self._st.copy()
            if index <= st.snap_meta.index:
                return Snapshot(meta=st.snap_meta, data=self._load_snap_data())
            if index > st.last:
                raise RaftInvariantError(f"snapshot {index} beyond last index {st.last}")
            meta = SnapshotMeta(index=index, term=self._term(index), conf_state=conf_state)
            batch = self._engine.batch(sync=True)
            self._stage_snap_data(batch, st, meta, data)
            batch.commit()
            self._st, self._snap_data = st, data
            return Snapshot(meta=meta, data=data)

    def _load_snap_data(self) -> bytes:
        if self._snap_data is None:
            self._snap_data = self._read_snap_data(self._st.snap_len)
        return self._snap_data

    def compact(self, compact_index: int, *, defer_cleanup: bool = False) -> None:
        """Discard entries up to ``compact_index``, which becomes the offset ("dummy") entry.

        The new offset is written first (fsync'ed, with the first deletions); the remaining
        entries are deleted in batches of ``_DELETE_CHUNK``. A crash in between leaves keys
        below the offset, which the next open deletes. With ``defer_cleanup`` only the
        offset is written here, and the caller runs :meth:`delete_compacted` later (on
        another thread: deleting a snapshot's worth of entries takes a few hundred
        milliseconds, which the writer need not wait for).

        Raises:
            RaftInvariantError: ``compact_index`` is beyond the last index.
        """
        with self._lock:
            st = self._st.copy()
            if compact_index <= st.offset:
                return
            if compact_index > st.last:
                raise RaftInvariantError(f"compact {compact_index} beyond last {st.last}")
            old_first = st.offset + 1
            st.offset_term = self._term(compact_index)
            st.offset = compact_index
            batch = self._engine.batch(sync=True)
            batch.put(keys.LOG_OFFSET, codec.encode_offset(st.offset, st.offset_term))
            if not defer_cleanup:
                for i in range(old_first, min(compact_index + 1, old_first + _DELETE_CHUNK)):
                    batch.delete(keys.log_key(i))
            batch.commit()
            self._st = st
            tail_start = st.last - len(self._tail) + 1
            if tail_start <= compact_index:
                self._set_tail(self._tail[compact_index + 1 - tail_start:])
            if not defer_cleanup:
                self._delete_below(compact_index + 1)

    def delete_compacted(self) -> None:
        """Delete the log keys left below the offset by ``compact(defer_cleanup=True)``.

        Safe to run on another thread than the writer's, without the lock: it touches only
        keys below the offset, which nothing reads or writes any more. The caller must let
        it finish before closing the storage.
        """
        self._delete_below(self._st.offset + 1)

    def set_conf_state(self, index: int, conf_state: ConfState) -> None:
        """Persist the membership after applying the conf change at ``index`` (one fsync).

        :meth:`initial_state` returns it while it is newer than the snapshot's, so a restart
        with ``Config.applied`` past ``index`` starts with the right voters.
        """
        with self._lock:
            batch = self._engine.batch(sync=True)
            batch.put(keys.CONF_STATE, codec.encode_conf_record(index, conf_state))
            batch.commit()
            self._conf = (index, conf_state)
