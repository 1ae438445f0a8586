"""The watch hub: fans the MVCC events of applied entries out to watchers (etcd 3.4
``mvcc/watchable_store.go`` and ``etcdserver/api/v3rpc/watch.go``, without gRPC).

A watcher is either *synced* (it has seen every revision up to the hub's revision and gets
live events from :meth:`WatchHub.on_events`) or *unsynced* (a catch-up task reads its missing
revisions from the store's history, :meth:`History.events_between`, and turns it synced when
it reaches the current revision). New watchers with a past start revision start unsynced; a
synced watcher whose stream queue is full becomes unsynced instead of buffering, so a slow
client never blocks the driver and never holds more than one bounded queue of responses.
An applied put's event carries no ``prev_kv`` (the apply reads no previous value); for a
watcher that asked for it, the hub reads it back from the history once per entry
(:meth:`History.with_prev_kv`), as etcd's watch server does.

Invariants:
    * ``next_rev`` of a watcher is the first revision it has not been handed yet; a synced
      watcher skips live events below it, so history and live events neither overlap nor
      leave a gap.
    * a watcher is in ``WatchHub._synced`` iff ``synced`` is set, and then has no task.
    * every response of one watcher is queued in revision order, after its ``created``
      response; all events of one revision travel in one response.
    * everything runs on the event loop; nothing here awaits while deciding synced-ness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from raftkv.errors import CompactedError
from raftkv.state.commands import Event, EventType
from raftkv.state.mvcc import interval

log = logging.getLogger("raftkv.server.watch")

MSG_EMPTY_RANGE = "mvcc: watcher range is empty"
MSG_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"

QUEUE_SIZE = 128
"""Responses buffered per stream (etcd's ``chanBufLen``)."""
CHUNK_REVS = 100
"""Revisions read from history per catch-up step (and per catch-up response)."""
PROGRESS_INTERVAL_S = 600.0
"""etcd's default ``--experimental-watch-progress-notify-interval`` (10 min)."""


class History(Protocol):
    """What the hub reads from the state machine."""

    @property
    def revision(self) -> int: ...

    def events_between(self, start_rev: int, end_rev: int, key: bytes,
                       range_end: bytes) -> list[Event]: ...

    def with_prev_kv(self, events: Sequence[Event]) -> list[Event]: ...


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A ``WatchCreateRequest``. ``range_end`` follows etcd's convention (``b"\\0"``: from
    ``key`` on); an empty ``key`` means ``b"\\0"``. ``watch_id`` 0 lets the stream choose."""

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    prev_kv: bool = False
    no_put: bool = False
    no_delete: bool = False
    progress_notify: bool = False
    watch_id: int = 0


@dataclass(frozen=True, slots=True)
class Out:
    """One ``WatchResponse`` to send. ``revision`` is the header revision (0: current);
    ``prev_kv`` says whether the events' ``prev_kv`` are to be sent."""

    watch_id: int
    events: tuple[Event, ...] = ()
    revision: int = 0
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    prev_kv: bool = False


@dataclass(eq=False, slots=True)
class _Watcher:
    id: int
    spec: WatchSpec
    stream: WatchStream
    next_rev: int
    lo: bytes = b""
    hi: bytes | None = None
    synced: bool = False
    task: asyncio.Task[None] | None = None
    progress_due: bool = True

    def __post_init__(self) -> None:
        self.lo, self.hi = interval(self.spec.key, self.spec.range_end)

    def wants(self, ev: Event) -> bool:
        key = ev.kv.key
        if key < self.lo or (self.hi is not None and key >= self.hi):
            return False
        if ev.type is EventType.PUT:
            return not self.spec.no_put
        return not self.spec.no_delete

    def response(self, events: Sequence[Event], revision: int) -> Out:
        self.progress_due = False
        return Out(self.id, tuple(events), revision, prev_kv=self.spec.prev_kv)


@dataclass(eq=False)
class WatchStream:
    """The watchers of one Watch call and its bounded outgoing queue. ``None`` in the
    queue ends the stream (with ``error`` if set)."""

    hub: WatchHub
    queue: asyncio.Queue[Out | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    watchers: dict[int, _Watcher] = field(default_factory=dict)
    next_id: int = 0
    closed: bool = False
    error: str | None = None

    async def create(self, spec: WatchSpec) -> None:
        """Answer a create (``created``, or a failure) and start the watcher."""
        hub = self.hub
        current = hub.source.revision
        reason = self._refuse(spec)
        if reason is not None:
            await self._put(Out(-1, revision=current, created=True, canceled=True,
                                cancel_reason=reason))
            return
        wid = spec.watch_id
        if wid == 0:
            while self.next_id in self.watchers:
                self.next_id += 1
            wid, self.next_id = self.next_id, self.next_id + 1
        w = _Watcher(wid, spec, self, spec.start_revision or current + 1)
        self.watchers[wid] = w  # reserve the id before awaiting
        await self._put(Out(wid, revision=current, created=True))
        if self.watchers.get(wid) is w:
            hub._start(w)

    def _refuse(self, spec: WatchSpec) -> str | None:
        if spec.range_end not in (b"", b"\0") and spec.key >= spec.range_end:
            return MSG_EMPTY_RANGE
        if spec.watch_id != 0 and spec.watch_id in self.watchers:
            return MSG_DUPLICATE_ID
        return None

    async def cancel(self, watch_id: int) -> None:
        """Cancel a watcher (unknown ids are ignored, as etcd does)."""
        w = self.watchers.pop(watch_id, None)
        if w is None:
            return
        self.hub._drop(w)
        await self._put(Out(watch_id, canceled=True))

    async def progress(self) -> None:
        """A ``WatchProgressRequest``: ``watch_id -1``, no events, the hub's revision."""
        await self._put(Out(-1, revision=self.hub.revision))

    async def _put(self, out: Out) -> None:
        if not self.closed:
            await self.queue.put(out)

    def close(self, error: str | None = None) -> None:
        """Drop every watcher and end the stream (at once, dropping queued responses)."""
        if self.closed:
            return
        self.closed, self.error = True, error
        for w in self.watchers.values():
            self.hub._drop(w)
        self.watchers.clear()
        self.hub._streams.discard(self)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class WatchHub:
    """All watchers of one member; see the module docstring."""

    def __init__(self, source: History, *, chunk_revs: int = CHUNK_REVS,
                 progress_interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.source = source
        self.revision = source.revision
        """The last revision handed to synced watchers."""
        self.chunk_revs = chunk_revs
        self.progress_interval_s = progress_interval_s
        self._synced: set[_Watcher] = set()
        self._streams: set[WatchStream] = set()
        self._ticker: asyncio.Task[None] | None = None

    def open_stream(self) -> WatchStream:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._progress_loop())
        stream = WatchStream(self)
        self._streams.add(stream)
        return stream

    # -- driver hooks (on the event loop) --------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """The events of one applied entry (all at one revision)."""
        if not events:
            return
        rev = events[0].kv.mod_revision
        self.revision = max(self.revision, rev)
        filled: list[Event] | None = None  # with prev_kv, read once if a watcher wants it
        for w in list(self._synced):
            if rev < w.next_rev:
                continue
            mine = [e for e in events if w.wants(e)]
            if mine and w.spec.prev_kv:
                if filled is None:
                    filled = self.source.with_prev_kv(events)
                mine = [e for e in filled if w.wants(e)]
            if mine:
                try:
                    w.stream.queue.put_nowait(w.response(mine, rev))
                except asyncio.QueueFull:
                    self._unsync(w)  # it still needs `rev`: caught up from history
                    continue
            w.next_rev = rev + 1

    def on_apply(self, _index: int) -> None:
        """After each applied batch, and as soon as a snapshot from the leader is installed
        (before the entries after it are applied, whose events would pass the jump): a
        revision jump without events sends every synced watcher back to history."""
        current = self.source.revision
        if current <= self.revision:
            return
        self.revision = current
        for w in list(self._synced):
            if w.next_rev <= current:
                self._unsync(w)

    # -- internals ---------------------------------------------------------------------
    def _start(self, w: _Watcher) -> None:
        if w.next_rev > self.source.revision:
            w.synced = True
            self._synced.add(w)
        else:
            self._unsync(w)

    def _unsync(self, w: _Watcher) -> None:
        w.synced = False
        self._synced.discard(w)
        w.task = asyncio.get_running_loop().create_task(self._catch_up(w))

    def _drop(self, w: _Watcher) -> None:
        w.synced = False
        self._synced.discard(w)
        if w.task is not None:
            w.task.cancel()
            w.task = None

    async def _catch_up(self, w: _Watcher) -> None:
        """Replay ``w``'s missing revisions from history, then make it synced."""
        spec, queue = w.spec, w.stream.queue
        while True:
            top = self.source.revision
            if w.next_rev > top:  # no await from here on: nothing can slip in between
                w.task, w.synced = None, True
                self._synced.add(w)
                return
            end = min(top + 1, w.next_rev + self.chunk_revs)
            try:
                history = self.source.events_between(w.next_rev, end, spec.key, spec.range_end)
            except CompactedError as exc:
                w.stream.watchers.pop(w.id, None)
                w.task = None
                await queue.put(Out(w.id, canceled=True, compact_revision=exc.compact_revision))
                return
            w.next_rev = end
            mine = [e for e in history if w.wants(e)]
            if mine:
                await queue.put(w.response(mine, top))

    async def _progress_loop(self) -> None:
        """etcd's progress notifications: every interval, each synced ``progress_notify``
        watcher that was sent nothing since the last tick gets an empty response."""
        while self._streams:
            await asyncio.sleep(self.progress_interval_s)
            for stream in list(self._streams):
                for w in stream.watchers.values():
                    if w.spec.progress_notify and w.synced and w.progress_due:
                        with contextlib.suppress(asyncio.QueueFull):
                            stream.queue.put_nowait(Out(w.id, revision=self.revision))
                    w.progress_due = True
