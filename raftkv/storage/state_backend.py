"""`LevelDBBackend`: the state machine's :class:`~raftkv.state.backend.Backend` in LevelDB.

The state machine's keys live verbatim under the ``s`` namespace of the member's database
(:data:`raftkv.storage.keys.STATE`). One :meth:`LevelDBBackend.write` is one LevelDB write
batch, so the state machine's applied index, written in the same :class:`WriteBatch` as the
data it covers, can never disagree with the data after a crash (raft-features §2.6).

``sync``: by default every write is fsync'ed. With ``sync=False`` a write still lands in
the same LevelDB write-ahead log as the raft log, after the (fsync'ed) entries it applies,
so a crash of the *process* loses nothing and a crash of the *machine* can lose only a
suffix of whole applies; the applied index rolls back with them and those entries are
applied again from the raft log on restart. The caller must then call :meth:`sync` before
it creates a raft snapshot (or compacts the log) at the applied index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from raftkv.state.backend import WriteBatch
from raftkv.storage import keys
from raftkv.storage.engine import Engine, Namespace, View


class LevelDBBackend:
    """A :class:`~raftkv.state.backend.Backend` over one namespace of an :class:`Engine`."""

    def __init__(self, engine: Engine, namespace: Namespace = keys.STATE, *,
                 sync: bool = True) -> None:
        self._engine = engine
        self._ns = namespace
        self._sync = sync

    def get(self, key: bytes) -> bytes | None:
        """See :meth:`Backend.get`."""
        return self._engine.get(self._ns.key(key))

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """See :meth:`Backend.scan`: ``[start, end)`` ascending, as of this call."""
        lo, hi = self._ns.bounds(start, end)
        if hi is not None and hi <= lo:
            return iter(())
        return self._strip(self._engine.items(lo, hi))

    def _strip(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        n = len(self._ns.prefix)
        for k, v in items:
            yield k[n:], v

    def write(self, batch: WriteBatch) -> None:
        """See :meth:`Backend.write`: one atomic LevelDB batch (fsync'ed if ``sync``)."""
        wb = self._engine.batch(sync=self._sync)
        prefix = self._ns.prefix
        for key, value in batch.ops:
            if value is None:
                wb.delete(prefix + key)
            else:
                wb.put(prefix + key, value)
        wb.commit()

    def sync(self) -> None:
        """Make every earlier write durable (needed only with ``sync=False``)."""
        self._engine.sync()

    # -- snapshots -------------------------------------------------------------------------
    def snapshot_iter(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` of the state, ascending, from one consistent view.

        Writes made while iterating are not seen; the view is released at the end of the
        iteration (or when the iterator is closed).
        """
        view = self._engine.view()
        lo, hi = self._ns.bounds()
        return self._iter_view(view, lo, hi)

    def _iter_view(self, view: View, lo: bytes,
                   hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        with view:
            yield from self._strip(view.items(lo, hi))

    def install(self, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        """Replace the whole state by ``pairs``, atomically and durably; returns their count.

        One fsync'ed batch deletes every current key and puts the new ones, so a crash
        leaves either the old state or the new one (with its applied index), never a mix.
        The batch is built in memory: it needs about the size of the new state.
        """
        wb = self._engine.batch(sync=True)
        lo, hi = self._ns.bounds()
        for k in self._engine.keys(lo, hi):
            wb.delete(k)
        n = 0
        prefix = self._ns.prefix
        for key, value in pairs:
            wb.put(prefix + key, value)
            n += 1
        wb.commit()
        return n

    def __len__(self) -> int:
        """The number of keys (counts them: O(n))."""
        lo, hi = self._ns.bounds()
        return sum(1 for _ in self._engine.keys(lo, hi))
