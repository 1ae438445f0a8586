"""The multi-version key space, with etcd's revision semantics.

* A fresh store is at revision 1; the first write gets revision 2.
* Every request that changes something bumps the revision by exactly one, and all its
  changes share that main revision (ordered by ``sub``). A request that changes nothing
  leaves the revision alone.
* ``create_revision`` is the revision at which the key was (last) created, ``mod_revision``
  the revision of its last change, ``version`` the number of changes since creation. Deleting
  a key writes a tombstone; a later put creates it again with a new ``create_revision``.
* Reads may ask for a past revision, down to the compact revision inclusive.
* Compacting at ``R`` drops every record below ``R`` except the newest record below ``R`` of
  each live key; records at or above ``R`` are kept, so reads at ``R`` and later (and the
  events at ``R`` and later) are unchanged.

Every record lives in the backend (see :mod:`raftkv.state.schema`); the in-memory index of
revisions per key is rebuilt from the backend by :meth:`MVCCStore.reload`.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from raftkv.errors import CompactedError
from raftkv.state import codec, schema
from raftkv.state.backend import Backend, WriteBatch
from raftkv.state.commands import (
    Event,
    EventType,
    KeyValue,
    Range,
    RangeResult,
    SortOrder,
    SortTarget,
)
from raftkv.state.errors import MSG_COMPACTED, FutureRevisionError
from raftkv.state.revision import Revision

FRESH_REVISION = 1
"""The revision of an empty store (etcd's ``currentRev`` starts at 1)."""

NO_COMPACTION = -1
"""The compact revision of a store that was never compacted (etcd's ``compactMainRev``)."""

_MAIN = operator.itemgetter(0)

_SORT_KEYS: dict[SortTarget, Callable[[KeyValue], int | bytes]] = {
    SortTarget.KEY: operator.attrgetter("key"),
    SortTarget.VERSION: operator.attrgetter("version"),
    SortTarget.CREATE: operator.attrgetter("create_revision"),
    SortTarget.MOD: operator.attrgetter("mod_revision"),
    SortTarget.VALUE: operator.attrgetter("value"),
}


def interval(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    """Translate etcd's range-end convention into a half-open interval ``[start, end)``.

    ``range_end == b""`` is the single key (returned as ``[key, key + b"\\0")``),
    ``range_end == b"\\0"`` has no upper bound (``end=None``), anything else is
    ``[key, range_end)``, which is empty when ``range_end <= key``.
    """
    if range_end == b"":
        return key, key + b"\0"
    if range_end == b"\0":
        return key, None
    return key, range_end


def _kv_key(rev: Revision) -> bytes:
    return schema.KV_PREFIX + rev.to_bytes()


@dataclass(slots=True)
class _History:
    """The changes of one key, oldest first: ``(main, sub, is_tombstone)``, and the
    ``create_revision``, ``version`` and ``lease`` of the newest record (0 for a
    tombstone), so that a put needs no read of the key's current value (etcd's
    ``keyIndex`` keeps the same).

    Invariants: non-empty; strictly ascending by ``(main, sub)``; ``create``,
    ``version`` and ``lease`` are those of the record ``revs[-1]``.
    """

    revs: list[tuple[int, int, bool]] = field(default_factory=list)
    create: int = 0
    version: int = 0
    lease: int = 0

    def set_latest(self, kv: KeyValue) -> None:
        """Record ``kv`` (the newest record of the key) as the latest one's metadata."""
        self.create, self.version, self.lease = kv.create_revision, kv.version, kv.lease

    def at(self, rev: int) -> tuple[int, int] | None:
        """The live record visible at main revision ``rev``, or ``None``."""
        i = bisect.bisect_right(self.revs, rev, key=_MAIN) - 1
        if i < 0 or self.revs[i][2]:
            return None
        main, sub, _ = self.revs[i]
        return main, sub

    def latest_live(self) -> tuple[int, int] | None:
        """The newest record if it is live."""
        main, sub, tomb = self.revs[-1]
        return None if tomb else (main, sub)


class MVCCStore:
    """The revisioned key space over a :class:`Backend`.

    Invariants:
        * ``revision >= FRESH_REVISION`` and ``compact_revision <= revision``.
        * ``_keys`` is sorted and holds exactly the keys of ``_index``.
        * every record in the backend has ``main <= revision`` and appears in ``_index``.
        * all changes go through :class:`WriteTxn`; after a failed write txn the caller
          calls :meth:`reload` to drop its half-applied in-memory changes.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._index: dict[bytes, _History] = {}
        self._keys: list[bytes] = []
        self._revision = FRESH_REVISION
        self._compact = NO_COMPACTION
        self.reload()

    @property
    def revision(self) -> int:
        """The current store revision."""
        return self._revision

    @property
    def compact_revision(self) -> int:
        """The revision of the last compaction, or :data:`NO_COMPACTION`."""
        return self._compact

    def reload(self) -> None:
        """Rebuild the in-memory index and meta values from the backend."""
        self._index = {}
        end = schema.next_prefix(schema.KV_PREFIX)
        for bkey, value in self._backend.scan(schema.KV_PREFIX, end):
            rev = Revision.from_bytes(bkey[len(schema.KV_PREFIX) :])
            kv = codec.decode(value, KeyValue)
            hist = self._index.setdefault(kv.key, _History())
            hist.revs.append((rev.main, rev.sub, kv.create_revision == 0))
            hist.set_latest(kv)  # the scan is in revision order: the last one stays
        self._keys = sorted(self._index)
        raw_rev = self._backend.get(schema.META_REVISION)
        raw_compact = self._backend.get(schema.META_COMPACT)
        self._revision = FRESH_REVISION if raw_rev is None else schema.decode_i64(raw_rev)
        self._compact = NO_COMPACTION if raw_compact is None else schema.decode_i64(raw_compact)

    def range(self, req: Range) -> RangeResult:
        """Serve a :class:`Range` at the current revision (no log entry involved).

        Raises:
            FutureRevisionError: ``req.revision`` is above the current revision.
            CompactedError: ``req.revision`` is below the compact revision.
        """
        return self._range(req, self._revision, {})

    def begin(self) -> WriteTxn:
        """Start the write transaction of one request."""
        return WriteTxn(self)

    def live_kvs(self) -> Iterator[KeyValue]:
        """Every live key at the current revision, in key order."""
        for key in self._keys:
            found = self._index[key].latest_live()
            if found is not None:
                yield self._read(Revision(*found), {})

    def events_between(self, start_rev: int, end_rev: int, key: bytes,
                       range_end: bytes) -> list[Event]:
        """The changes to the keys of ``key``/``range_end`` (etcd's range-end convention)
        at main revisions in the half-open interval ``[start_rev, end_rev)``, in revision
        order, read from the records still in the backend (etcd's unsynced-watcher path).

        Each event carries ``prev_kv`` (the key's value just before the change) when the
        key existed; DELETE events carry the tombstone (key and ``mod_revision`` only).

        Raises:
            CompactedError: ``start_rev`` is below the compact revision (checked before and
                after reading, so a compaction racing the read is reported too).
        """
        self._check_history(start_rev)
        if end_rev <= start_rev:
            return []
        lo, hi = interval(key, range_end)
        out: list[Event] = []
        first = _kv_key(Revision(max(start_rev, 0), 0))
        for bkey, value in self._backend.scan(first, _kv_key(Revision(end_rev, 0))):
            kv = codec.decode(value, KeyValue)
            if kv.key < lo or (hi is not None and kv.key >= hi):
                continue
            rev = Revision.from_bytes(bkey[len(schema.KV_PREFIX) :])
            prev = self._previous(kv.key, rev)
            if kv.create_revision == 0:
                out.append(Event(EventType.DELETE, kv, prev))
            else:
                out.append(Event(EventType.PUT, kv, prev if kv.version > 1 else None))
        self._check_history(start_rev)
        return out

    def _check_history(self, start_rev: int) -> None:
        if start_rev < self._compact:
            raise CompactedError(MSG_COMPACTED, compact_revision=self._compact)

    def with_prev_kv(self, events: Sequence[Event]) -> list[Event]:
        """The events of one request (one revision, as :attr:`Applied.events` gives them)
        with ``prev_kv`` filled in where a write leaves it out.

        A put does not read the key's previous value (etcd's does not either), so its
        event carries none; this reads it back from the history, as etcd's watch server
        does for a watcher that asked for ``prev_kv``. Call it while the revision is
        still above the compact revision: a value compacted away is left out (``None``),
        as in etcd. Events that already carry ``prev_kv`` are returned as they are.

        A request puts a key at most once and never after deleting it (a txn that would is
        refused, as in etcd), so a put's previous value is the key's value at the revision
        before.
        """
        out: list[Event] = []
        for ev in events:
            kv = ev.kv
            if ev.type is EventType.PUT and ev.prev_kv is None and kv.version > 1:
                ev = Event(EventType.PUT, kv, self._live_at(kv.key, kv.mod_revision - 1))
            out.append(ev)
        return out

    def _live_at(self, key: bytes, rev: int) -> KeyValue | None:
        """The live value of ``key`` at main revision ``rev``, if still in the history."""
        hist = self._index.get(key)
        found = None if hist is None else hist.at(rev)
        if found is None:
            return None
        try:
            return self._read(Revision(*found), {})
        except KeyError:
            return None

    def _previous(self, key: bytes, rev: Revision) -> KeyValue | None:
        """The live value of ``key`` just before the change at ``rev``, if any."""
        hist = self._index.get(key)
        if hist is None:
            return None
        i = bisect.bisect_left(hist.revs, (rev.main, rev.sub), key=lambda r: (r[0], r[1])) - 1
        if i < 0 or hist.revs[i][2]:
            return None
        main, sub, _ = hist.revs[i]
        try:
            return self._read(Revision(main, sub), {})
        except KeyError:
            return None  # compacted away while we read: the caller re-checks

    # ----------------------------------------------------------------- internals

    def _read(self, rev: Revision, pending: dict[bytes, bytes | None]) -> KeyValue:
        bkey = _kv_key(rev)
        raw = pending[bkey] if bkey in pending else self._backend.get(bkey)
        if raw is None:
            raise KeyError(f"mvcc: record {rev} is indexed but missing from the backend")
        return codec.decode(raw, KeyValue)

    def _keys_in(self, key: bytes, range_end: bytes) -> list[bytes]:
        if range_end == b"":
            return [key] if key in self._index else []
        start, end = interval(key, range_end)
        lo = bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        return self._keys[lo:hi]

    def _visible(self, key: bytes, range_end: bytes, rev: int) -> list[Revision]:
        """Revisions of the keys in the range that are live at ``rev``, in key order."""
        out: list[Revision] = []
        for k in self._keys_in(key, range_end):
            found = self._index[k].at(rev)
            if found is not None:
                out.append(Revision(*found))
        return out

    def _check_revision(self, requested: int, current: int) -> int:
        """etcd's ``rangeKeys`` revision rules; returns the revision to read at."""
        if requested > current:
            raise FutureRevisionError()
        rev = current if requested <= 0 else requested
        if rev < self._compact:
            raise CompactedError(MSG_COMPACTED, compact_revision=self._compact)
        return rev

    def _range(self, req: Range, current: int, pending: dict[bytes, bytes | None]) -> RangeResult:
        """etcd 3.4 ``applierV3backend.Range`` over ``rangeKeys`` at ``current``."""
        rev = self._check_revision(req.revision, current)
        revs = self._visible(req.key, req.range_end, rev)
        if req.count_only or not revs:
            return RangeResult(revision=current, count=len(revs))
        filtered = bool(
            req.min_mod_revision or req.max_mod_revision
            or req.min_create_revision or req.max_create_revision
        )  # fmt: skip
        order = req.sort_order
        if req.sort_target != SortTarget.KEY and order == SortOrder.NONE:
            order = SortOrder.ASCEND
        fetch = len(revs)
        if req.limit > 0 and order == SortOrder.NONE and not filtered:
            fetch = min(fetch, req.limit + 1)  # one extra decides `more`
        kvs = [self._read(r, pending) for r in revs[:fetch]]
        if filtered:
            kvs = [kv for kv in kvs if _within(kv, req)]
        if order != SortOrder.NONE and not (
            order == SortOrder.ASCEND and req.sort_target == SortTarget.KEY
        ):
            kvs.sort(key=_SORT_KEYS[req.sort_target], reverse=order == SortOrder.DESCEND)
        more = 0 < req.limit < len(kvs)
        if more:
            kvs = kvs[: req.limit]
        if req.keys_only:
            kvs = [KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"",
                            kv.lease) for kv in kvs]  # fmt: skip
        return RangeResult(revision=current, kvs=tuple(kvs), more=more, count=len(revs))


def _within(kv: KeyValue, req: Range) -> bool:
    """The min/max mod/create revision filters of a :class:`Range` (0 = no bound)."""
    return not (
        (req.max_mod_revision and kv.mod_revision > req.max_mod_revision)
        or (req.min_mod_revision and kv.mod_revision < req.min_mod_revision)
        or (req.max_create_revision and kv.create_revision > req.max_create_revision)
        or (req.min_create_revision and kv.create_revision < req.min_create_revision)
    )


class WriteTxn:
    """The changes of one request, all at main revision ``begin_revision + 1``.

    Reads inside the transaction see its earlier writes. Backend writes are buffered in
    ``pending`` until :meth:`commit` copies them into the request's batch; the in-memory
    index is updated immediately, so a transaction that fails after changing something
    (``dirty``) must be followed by :meth:`MVCCStore.reload`.

    Invariants:
        * ``events`` lists the changes in order; the n-th change has ``sub == n``.
        * ``revision == begin_revision + 1`` iff at least one key changed.
    """

    def __init__(self, store: MVCCStore) -> None:
        self._store = store
        self.begin_revision = store.revision
        self.pending: dict[bytes, bytes | None] = {}
        self.events: list[Event] = []
        self.lease_changes: list[tuple[bytes, int, int]] = []
        """``(key, old lease, new lease)`` of each change that involves a lease, in order."""
        self.dirty = False
        self._new_compact: int | None = None

    @property
    def revision(self) -> int:
        """The store revision as this transaction sees it."""
        return self.begin_revision + 1 if self.events else self.begin_revision

    @property
    def compact_revision(self) -> int:
        """The compact revision, including a compaction done by this transaction."""
        if self._new_compact is not None:
            return self._new_compact
        return self._store.compact_revision

    def range(self, req: Range) -> RangeResult:
        """A :class:`Range` that sees this transaction's writes (etcd ``storeTxnWrite``)."""
        return self._store._range(req, self.revision, self.pending)

    def get(self, key: bytes) -> KeyValue | None:
        """The live value of ``key`` as this transaction sees it."""
        hist = self._store._index.get(key)
        found = None if hist is None else hist.latest_live()
        return None if found is None else self._store._read(Revision(*found), self.pending)

    def stage(self, backend_key: bytes, value: bytes | None) -> None:
        """Buffer a raw backend write (``None`` deletes) to commit with this request."""
        self.dirty = True
        self.pending[backend_key] = value

    def put(self, key: bytes, value: bytes, lease: int) -> KeyValue:
        """Write ``key``; returns the new :class:`KeyValue`.

        The key's previous value is not read: its creation revision, version and lease
        come from the index, and the event carries no ``prev_kv`` (see
        :meth:`MVCCStore.with_prev_kv`).
        """
        main = self.begin_revision + 1
        hist = self._store._index.get(key)
        old_lease = 0
        if hist is None or hist.revs[-1][2]:
            kv = KeyValue(key, main, main, 1, value, lease)
        else:
            kv = KeyValue(key, hist.create, main, hist.version + 1, value, lease)
            old_lease = hist.lease
        if old_lease or lease:
            self.lease_changes.append((key, old_lease, lease))
        self._record(Revision(main, len(self.events)), kv, tombstone=False)
        self.events.append(Event(EventType.PUT, kv))
        return kv

    def delete_range(self, key: bytes, range_end: bytes) -> list[KeyValue]:
        """Delete the live keys of the range, in key order; returns their previous values."""
        deleted: list[KeyValue] = []
        for k in list(self._store._keys_in(key, range_end)):
            prev = self.get(k)
            if prev is None:
                continue
            rev = Revision(self.begin_revision + 1, len(self.events))
            tomb = KeyValue(key=k, mod_revision=rev.main)
            self._record(rev, tomb, tombstone=True)
            self.events.append(Event(EventType.DELETE, tomb, prev))
            if prev.lease:
                self.lease_changes.append((k, prev.lease, 0))
            deleted.append(prev)
        return deleted

    def _record(self, rev: Revision, kv: KeyValue, *, tombstone: bool) -> None:
        store = self._store
        self.stage(_kv_key(rev), codec.encode(kv))
        hist = store._index.get(kv.key)
        if hist is None:
            hist = store._index[kv.key] = _History()
            bisect.insort(store._keys, kv.key)
        hist.revs.append((rev.main, rev.sub, tombstone))
        hist.set_latest(kv)

    def compact(self, revision: int) -> None:
        """Drop history below ``revision`` (see the module docstring).

        Raises:
            CompactedError: ``revision`` is not above the previous compact revision.
            FutureRevisionError: ``revision`` is above the current revision.
        """
        store = self._store
        if revision <= store.compact_revision:
            raise CompactedError(MSG_COMPACTED, compact_revision=store.compact_revision)
        if revision > self.revision:
            raise FutureRevisionError()
        self.dirty = True
        self._new_compact = revision
        for key in list(store._keys):
            hist = store._index[key]
            split = bisect.bisect_left(hist.revs, revision, key=_MAIN)
            below = hist.revs[:split]
            keep_last = bool(below) and not below[-1][2]
            for main, sub, _ in below[:-1] if keep_last else below:
                self.stage(_kv_key(Revision(main, sub)), None)
            hist.revs[:split] = below[-1:] if keep_last else []
            if not hist.revs:
                del store._index[key]
                del store._keys[bisect.bisect_left(store._keys, key)]

    def commit(self, batch: WriteBatch) -> None:
        """Copy the buffered writes and the new meta values into ``batch``.

        The caller writes ``batch`` to the backend, then calls :meth:`finish`.
        """
        for bkey, value in self.pending.items():
            if value is None:
                batch.delete(bkey)
            else:
                batch.put(bkey, value)
        if self.events:
            batch.put(schema.META_REVISION, schema.encode_i64(self.revision))
        if self._new_compact is not None:
            batch.put(schema.META_COMPACT, schema.encode_i64(self._new_compact))

    def finish(self) -> None:
        """Publish the new revision and compact revision after the batch is durable."""
        self._store._revision = self.revision
        if self._new_compact is not None:
            self._store._compact = self._new_compact
