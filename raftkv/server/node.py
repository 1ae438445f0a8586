"""The node driver: the one asyncio task that owns the `RawNode`.

Its loop, per batch of inputs (ticks, peer messages, client proposals and reads)::

    step everything -> ready -> send messages_now -> persist (one fsync'ed LevelDB batch,
    in a worker thread) -> send messages_after_persist -> queue committed entries for the
    apply task -> answer reads -> advance -> maybe snapshot and compact

and, in a second task, the apply loop: apply queued entries in chunks (one LevelDB write
each), answer their proposals and reads, feed the watchers.

While the fsync runs, new proposals and reads queue up and share the next batch: this is
the group commit that makes a Python node fast. Nothing here decides anything Raft-wise;
the core does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from raftkv.errors import RaftKVError, UnavailableError
from raftkv.raft.errors import ProposalDropped, RaftInvariantError
from raftkv.raft.rawnode import RawNode, Ready
from raftkv.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    StateRole,
)
from raftkv.server.auth_context import PRINCIPAL
from raftkv.state import codec
from raftkv.state.commands import Command, Event, Request, Response
from raftkv.state.machine import StateMachine, encode_snapshot
from raftkv.storage.raft_store import DurableLogStorage

log = logging.getLogger("raftkv.server.node")


class Transport(Protocol):
    """Where the driver sends messages (see :mod:`raftkv.server.transport`)."""

    def send(self, messages: Sequence[Message]) -> None: ...


@dataclass(frozen=True, slots=True)
class DriverConfig:
    tick_interval_s: float
    request_timeout_s: float
    snapshot_count: int
    snapshot_catchup_entries: int


_APPLY_CHUNK = 1024
"""Committed entries applied per step of the apply task (one backend write each)."""
_APPLY_INLINE = 64
"""Committed entries at most that the driver applies in its own cycle when none are queued
(handing a few entries to the apply task costs more than applying them)."""
_APPLY_BACKLOG = 8192
"""Queued entries past which the driver applies in its own cycle (bounds the queue)."""

_EXTRA_MAGIC = b"RKVSNAPX"
"""Marks a Raft snapshot that carries extra replicated state after the state machine's."""


class RequestTimeoutError(UnavailableError):
    """The request did not complete in time (etcd: ``etcdserver: request timed out``)."""


class _Deadlines:
    """Futures failed with a request timeout once their deadline passes, checked on every
    tick: one sweep for all pending requests instead of a timer per request
    (``asyncio.wait_for`` costs a timer handle and two callbacks on every call).

    Every deadline is "now + the same timeout", so insertion order is deadline order; a
    request that ends is discarded at once, so only pending futures are held (a completed
    future kept until its deadline would keep its result alive for the whole timeout:
    tens of thousands of objects for the garbage collector to scan under load).
    """

    def __init__(self) -> None:
        self._pending: dict[asyncio.Future[Any], float] = {}

    def add(self, deadline: float, fut: asyncio.Future[Any]) -> None:
        self._pending[fut] = deadline

    def discard(self, fut: asyncio.Future[Any]) -> None:
        self._pending.pop(fut, None)

    def __len__(self) -> int:
        return len(self._pending)

    def expire(self, now: float) -> None:
        expired = []
        for fut, deadline in self._pending.items():
            if deadline > now:
                break
            expired.append(fut)
        for fut in expired:
            del self._pending[fut]
            if not fut.done():
                fut.set_exception(RequestTimeoutError("etcdserver: request timed out"))


def _encode_snapshot(source: Iterable[tuple[bytes, bytes]], extra: bytes | None) -> bytes:
    """The state machine's pairs encoded, followed by the extra replicated state if any
    (safe on any thread: ``source`` is a fixed view)."""
    data = encode_snapshot(source)
    if extra is None:
        return data
    return _EXTRA_MAGIC + len(data).to_bytes(8, "big") + data + extra


def split_snapshot_data(data: bytes) -> tuple[bytes, bytes | None]:
    """A Raft snapshot's data split into the state machine's part and the extra part."""
    if not data.startswith(_EXTRA_MAGIC):
        return data, None
    start = len(_EXTRA_MAGIC) + 8
    size = int.from_bytes(data[len(_EXTRA_MAGIC):start], "big")
    return data[start:start + size], data[start + size:]


class NodeDriver:
    """Owns the RawNode, the durable log and the state machine of one member."""

    def __init__(self, raw: RawNode, storage: DurableLogStorage, sm: StateMachine,
                 transport: Transport, cfg: DriverConfig) -> None:
        self.raw = raw
        self.storage = storage
        self.sm = sm
        self.transport = transport
        self.cfg = cfg
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raftkv-io")
        self._wake = asyncio.Event()
        self._ticks = 0
        self._inbox: list[Message] = []
        self._reports: list[Callable[[RawNode], None]] = []
        self._proposals: list[bytes] = []
        self._waiting: dict[bytes, asyncio.Future[Response | None]] = {}
        self._requests: dict[bytes, Request] = {}
        """The request each waiting proposal encodes: applied without decoding it again."""
        self._read_waiters: list[asyncio.Future[None]] = []
        self._deadlines = _Deadlines()
        self._read_batches: dict[bytes, list[asyncio.Future[None]]] = {}
        self._read_started: dict[bytes, float] = {}
        self._reads_to_apply: list[tuple[int, list[asyncio.Future[None]]]] = []
        self._apply_queue: deque[Entry] = deque()
        self._apply_wake = asyncio.Event()
        self._seq = itertools.count(int.from_bytes(os.urandom(3), "big") << 32)
        self._read_seq = itertools.count(1)
        self._stopping = False
        self.on_apply: list[Callable[[int], None]] = []
        """Called (on the event loop) with the applied index after each applied batch."""
        self.on_events: list[Callable[[Sequence[Event]], None]] = []
        """Called (on the event loop) with the MVCC events of each applied entry, in order."""
        self.on_leadership: list[Callable[[bool], None]] = []
        """Called (on the event loop) when this member becomes or stops being the leader."""
        self._conf_waiting: dict[bytes, asyncio.Future[ConfState]] = {}
        self._pending_conf: list[ConfChange] = []
        self.on_conf_change: list[Callable[[int, ConfChange, ConfState], None]] = []
        """Called on the event loop, in log order, with each applied conf change entry."""
        self.is_attribute_change: Callable[[ConfChange], bool] = lambda _: False
        """True for a conf change entry that only carries member attributes (not for Raft)."""
        self._snapshot_due = False
        self._cleanup_job: asyncio.Future[None] | None = None
        """Deleting the log entries below the last compaction (on a worker thread)."""
        self._data_job: asyncio.Future[bytes] | None = None
        """The state being encoded for a follower's snapshot, off the loop."""
        self.snapshot_extra: tuple[Callable[[], bytes], Callable[[bytes, int], None]] | None
        self.snapshot_extra = None
        """(dump, load) of replicated state kept outside the state machine (the member
        registry): it travels in Raft snapshots next to the state machine's data."""
        self.on_snapshot_installed: list[Callable[[int], None]] = []
        self.fatal: BaseException | None = None
        self.last_heard: dict[int, float] = {}
        """Event-loop time of the last Raft message received from each member."""

    # -- inputs (called from gRPC handlers, on the event loop) ---------------------------
    def deliver(self, messages: Sequence[Message]) -> None:
        self._inbox.extend(messages)
        if messages:  # one batch comes from one peer's stream
            self.last_heard[messages[-1].frm] = asyncio.get_running_loop().time()
        self._wake.set()

    def report_unreachable(self, member_id: int) -> None:
        """The transport lost its stream to ``member_id``."""
        self._reports.append(lambda raw: raw.report_unreachable(member_id))
        self._wake.set()

    def report_snapshot(self, member_id: int, ok: bool) -> None:
        """A snapshot send to ``member_id`` finished (or failed)."""
        self._reports.append(lambda raw: raw.report_snapshot(member_id, ok))
        self._wake.set()

    async def propose(self, op: Command, request_id: tuple[int, int, int] | None = None,
                      *, internal: bool = False) -> Response:
        """Propose ``op`` through Raft; return its result once applied on this member.

        ``request_id`` is a client's ``(client_id, seq, ack)``: the state machine applies a
        retried request once and answers every copy with the first result. A fresh nonce
        keeps each proposal's bytes (the key of its waiter here) unique. The request is
        stamped with the caller of the RPC being served (:data:`~raftkv.server.auth.
        PRINCIPAL`), checked at apply when auth is on; ``internal`` marks the member's own
        proposals (lease expiry, checkpoints, issued tokens), which no user makes.
        """
        self._check_running()
        n = next(self._seq)
        p = PRINCIPAL.get()
        # the auth revision now, not when the caller was resolved: a stream's caller stays
        # the same for its life, and only a change between this and the apply is stale
        user, rev = (p.user, self.sm.auth.revision) if p is not None else ("", 0)
        if request_id is None:
            request = Request(0, n, op, user=user, auth_revision=rev, internal=internal)
        else:
            cid, seq, ack = request_id
            request = Request(cid, seq, op, ack=ack, nonce=n, user=user, auth_revision=rev,
                              internal=internal)
        data = codec.encode_request(request)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Response | None] = loop.create_future()
        self._waiting[data] = fut
        self._requests[data] = request
        self._deadlines.add(loop.time() + self.cfg.request_timeout_s, fut)
        self._proposals.append(data)
        self._wake.set()
        try:
            result = await fut
        finally:
            self._waiting.pop(data, None)
            self._requests.pop(data, None)
            self._deadlines.discard(fut)
        if result is None:
            raise RequestTimeoutError("etcdserver: request timed out")
        return result

    @property
    def is_leader(self) -> bool:
        return self.raw.raft.role is StateRole.LEADER

    @property
    def lead(self) -> int:
        """The member id of the leader this member knows of (0: none)."""
        return self.raw.raft.lead

    async def propose_conf_change(self, cc: ConfChange) -> ConfState:
        """Propose a membership change; return the membership once it is applied here.

        Raises:
            UnavailableError: the leader refused it (another change is pending, or no
                leader), or it did not apply in time.
        """
        self._check_running()
        nonce = os.urandom(8)
        cc = ConfChange(cc.type, cc.node_id, nonce + cc.context)
        fut: asyncio.Future[ConfState] = asyncio.get_running_loop().create_future()
        self._conf_waiting[cc.encode()] = fut
        self._pending_conf.append(cc)
        self._wake.set()
        try:
            return await asyncio.wait_for(fut, self.cfg.request_timeout_s)
        except TimeoutError:
            raise RequestTimeoutError("etcdserver: request timed out") from None
        finally:
            self._conf_waiting.pop(cc.encode(), None)

    def transfer_leadership(self, member_id: int) -> None:
        """Ask the leader to hand leadership to ``member_id`` (MoveLeader)."""
        self._reports.append(lambda raw: raw.transfer_leader(member_id))
        self._wake.set()

    async def read_barrier(self) -> None:
        """Wait until this member's state reflects every write acknowledged before the call
        (ReadIndex, dissertation §6.4). Concurrent callers share one ReadIndex round."""
        self._check_running()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._read_waiters.append(fut)
        self._deadlines.add(loop.time() + self.cfg.request_timeout_s, fut)
        self._wake.set()
        try:
            await fut
        finally:
            self._deadlines.discard(fut)

    def _check_running(self) -> None:
        if self._stopping or self.fatal is not None:
            raise UnavailableError("etcdserver: server stopped")

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        ticker = asyncio.create_task(self._tick_loop(), name="raftkv-ticker")
        applier = asyncio.create_task(self._apply_loop(), name="raftkv-apply")
        try:
            while not self._stopping:
                await self._wake.wait()
                self._wake.clear()
                await self._cycle()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.fatal = exc
                log.exception("node driver stopped on a fatal error")
            raise
        finally:
            ticker.cancel()
            applier.cancel()
            self._fail_all(UnavailableError("etcdserver: server stopped"))
            if self._data_job is not None:  # it reads the backend: let it finish
                await asyncio.gather(self._data_job, return_exceptions=True)
            if self._cleanup_job is not None:  # it writes the log: let it finish
                await asyncio.gather(self._cleanup_job, return_exceptions=True)
            self._executor.shutdown(wait=True)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.cfg.tick_interval_s
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            self._ticks += 1
            self._deadlines.expire(loop.time())
            self._wake.set()

    async def _cycle(self) -> None:
        raw = self.raw
        ticks, self._ticks = self._ticks, 0
        for _ in range(ticks):
            raw.tick()
        inbox, self._inbox = self._inbox, []
        for m in inbox:
            raw.step(m)
        reports, self._reports = self._reports, []
        for report in reports:
            report(raw)
        self._propose_pending()
        self._propose_conf_changes()
        self._retry_lost_reads()
        self._start_reads()
        while raw.has_ready():
            await self._handle_ready(raw.ready())

    def _propose_pending(self) -> None:
        if not self._proposals:
            return
        if self.raw.raft.lead == 0:
            return  # keep them until a leader is known (or they time out)
        batch, self._proposals = self._proposals, []
        batch = [d for d in batch if d in self._waiting]  # drop timed-out ones
        try:
            self.raw.propose_batch(batch)
        except ProposalDropped:
            self._proposals = batch + self._proposals  # retried on the next cycle

    def _propose_conf_changes(self) -> None:
        pending, self._pending_conf = self._pending_conf, []
        for cc in pending:
            fut = self._conf_waiting.get(cc.encode())
            if fut is None or fut.done():
                continue
            try:
                self.raw.propose_conf_change(cc)
            except ProposalDropped as exc:
                fut.set_exception(UnavailableError(f"etcdserver: {exc}"))

    def _start_reads(self) -> None:
        if not self._read_waiters or self.raw.raft.lead == 0 or self._read_batches:
            return  # one round at a time: the reads queued meanwhile share the next one
        waiters, self._read_waiters = self._read_waiters, []
        ctx = b"r%d" % next(self._read_seq)
        try:
            self.raw.read_index(ctx)
        except ProposalDropped:
            self._read_waiters = waiters + self._read_waiters
            return
        self._read_batches[ctx] = [w for w in waiters if not w.done()]
        self._read_started[ctx] = self._now()

    def _retry_lost_reads(self) -> None:
        """Re-issue ReadIndex rounds not answered within a few heartbeats: the request or
        its answer may have been lost with a peer stream (as etcd retries its ReadIndex)."""
        limit = self._now() - max(0.5, 3 * self.cfg.tick_interval_s)
        for ctx, started in list(self._read_started.items()):
            if started < limit:
                del self._read_started[ctx]
                waiters = self._read_batches.pop(ctx, None)
                if waiters:
                    self._read_waiters.extend(w for w in waiters if not w.done())

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _handle_ready(self, rd: Ready) -> None:
        loop = asyncio.get_running_loop()
        if rd.soft_state is not None:
            self._on_soft_state(rd)
        self.transport.send(rd.messages_now)
        if rd.must_sync:
            await loop.run_in_executor(self._executor, self.storage.save, rd.hard_state,
                                       rd.entries, rd.snapshot)
        elif rd.hard_state is not None:
            # Only the commit index moved: nothing to fsync (etcd's MustSync), and an
            # unsynced LevelDB write is cheaper than the hop to the I/O thread and back.
            self.storage.save(rd.hard_state, sync=False)
        # The state machine is read by request handlers on this event loop, so it is only
        # ever changed on this thread too (never in the I/O thread): a reader can never
        # see half of an applied entry.
        if rd.snapshot is not None:
            self._apply_backlog()  # older entries first: the snapshot supersedes them
            self._install_snapshot(rd.snapshot.data, rd.snapshot.meta.index)
            log.info("installed snapshot at %d from the leader (%d bytes, the state at %d)",
                     rd.snapshot.meta.index, len(rd.snapshot.data), self.sm.applied_index)
        self.transport.send(rd.messages_after_persist)
        if rd.committed_entries:
            self._hand_over(rd.committed_entries)
        for rs in rd.read_states:
            self._read_started.pop(rs.context, None)
            waiters = self._read_batches.pop(rs.context, None)
            if waiters:
                self._reads_to_apply.append((rs.index, waiters))
        if rd.read_states and self._read_waiters:
            self._wake.set()  # the reads queued behind the round that ended start the next
        self.raw.advance(rd)
        self._release_reads()
        await self._maybe_snapshot(loop, self.sm.applied_index)

    async def _maybe_snapshot(self, loop: asyncio.AbstractEventLoop, applied: int) -> None:
        """Take a snapshot and compact the log when due.

        The snapshot records only where the state stands (index, term, membership): the
        state itself is the backend, in the same LevelDB as the log, so the snapshot's
        fsync'ed write also makes every state write before it durable (as etcd, whose
        Raft snapshots hold no key-value data). Its data is produced only when a follower
        needs it (:meth:`snapshot_data`). Before, every snapshot encoded the whole MVCC
        history, a cost that grew with it.
        """
        # Right after installing a snapshot the state can be ahead of the Raft log:
        # snapshot no further than what the log has applied.
        at = min(applied, self.raw.raft.log.applied)
        taken = self.storage.snapshot_meta().index
        if not self._snapshot_due and at - taken < self.cfg.snapshot_count:
            return
        self._snapshot_due = False
        if at <= taken:
            return
        await loop.run_in_executor(self._executor, self._snapshot, at,
                                   self.raw.raft.conf_state())
        if self._cleanup_job is None or self._cleanup_job.done():
            # the compacted entries are deleted off the I/O thread: persists go on
            self._cleanup_job = loop.run_in_executor(None, self.storage.delete_compacted)

    async def snapshot_data(self) -> bytes:
        """The data of a Raft snapshot for a follower: the whole state machine and the
        extra replicated state, as of now.

        The state is captured here, on the loop, at the applied index, which is at or
        past the index of the snapshot it travels with (a member that installs it skips
        the entries it already covers: the state machine ignores an entry at or below
        its applied index, and so does the member registry). It is encoded on a worker
        thread; followers that need a snapshot at the same time share one encoding.
        """
        job = self._data_job
        if job is None:
            source = self.sm.snapshot_source()
            extra = self.snapshot_extra[0]() if self.snapshot_extra is not None else None
            job = asyncio.get_running_loop().run_in_executor(None, _encode_snapshot, source,
                                                             extra)
            self._data_job = job
            job.add_done_callback(self._forget_data_job)
        return await asyncio.shield(job)

    def _forget_data_job(self, job: asyncio.Future[bytes]) -> None:
        if self._data_job is job:
            self._data_job = None  # the bytes are not kept: the next send encodes anew

    # -- applying committed entries ------------------------------------------------------
    def _hand_over(self, entries: Sequence[Entry]) -> None:
        """Queue committed entries for the apply task, or apply them now.

        Applying off the Ready cycle (as etcd's apply goroutine does) lets this member
        persist and acknowledge the next entries while a large batch is still being
        applied. A small batch with nothing queued before it is applied at once. Order is
        kept: everything queued is applied first whenever entries must be applied in the
        cycle itself: a membership change (Raft's configuration must follow the log as it
        is applied), an installed snapshot, or a backlog past the bound.
        """
        queue = self._apply_queue
        if not queue and len(entries) <= _APPLY_INLINE:
            self._apply_and_notify(entries)  # a small batch: not worth a task switch
            return
        queue.extend(entries)
        if len(queue) > _APPLY_BACKLOG or \
                any(e.type is EntryType.CONF_CHANGE for e in entries):
            self._apply_backlog()
        else:
            self._apply_wake.set()

    def _apply_backlog(self) -> None:
        """Apply everything queued, now (synchronously, on the event loop)."""
        queue = self._apply_queue
        if queue:
            entries = list(queue)
            queue.clear()
            self._apply_and_notify(entries)

    async def _apply_loop(self) -> None:
        """The apply task: applies queued entries in chunks, yielding to the event loop
        between chunks so that callers woken by one chunk run before the next."""
        queue = self._apply_queue
        try:
            while True:
                if not queue:
                    self._apply_wake.clear()
                    await self._apply_wake.wait()
                    continue
                n = min(len(queue), _APPLY_CHUNK)
                self._apply_and_notify([queue.popleft() for _ in range(n)])
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.fatal = exc
            log.exception("applying committed entries failed; stopping the member")
            self.stop()

    def _apply_and_notify(self, entries: Sequence[Entry]) -> None:
        """Apply ``entries`` in one backend write; answer their waiters and listeners."""
        results, confs, events = self._apply(entries)
        for data, result in results:
            fut = self._waiting.get(data)
            if fut is not None and not fut.done():
                fut.set_result(result)
        for data, cs in confs:
            cfut = self._conf_waiting.get(data)
            if cfut is not None and not cfut.done():
                cfut.set_result(cs)
        for batch in events:
            for listener in self.on_events:
                listener(batch)
        self._release_reads()
        applied = self.sm.applied_index
        for callback in self.on_apply:
            callback(applied)

    def _apply(self, entries: Sequence[Entry]) -> tuple[
            list[tuple[bytes, Response | None]], list[tuple[bytes, ConfState]],
            list[tuple[Event, ...]]]:
        """Apply committed entries (on the event loop thread); returns what to hand out."""
        results: list[tuple[bytes, Response | None]] = []
        confs: list[tuple[bytes, ConfState]] = []
        events: list[tuple[Event, ...]] = []
        with self.sm.applying_batch():  # one backend write for the whole batch
            for e in entries:
                self._apply_one(e, results, confs, events)
        return results, confs, events

    def _apply_one(self, e: Entry, results: list[tuple[bytes, Response | None]],
                   confs: list[tuple[bytes, ConfState]],
                   events: list[tuple[Event, ...]]) -> None:
        if e.type is EntryType.CONF_CHANGE:
            cc = ConfChange.decode(e.data)
            if self.is_attribute_change(cc):
                cs = self.raw.raft.conf_state()
            else:
                cs = self.raw.apply_conf_change(cc)
                # A member joining with an empty log is sent the latest snapshot, and
                # Raft refuses one whose membership lacks it: take a fresh one.
                self._snapshot_due = cc.type is not ConfChangeType.REMOVE_NODE
            self.storage.set_conf_state(e.index, cs)
            for hook in self.on_conf_change:
                hook(e.index, cc, cs)
            self.sm.apply(e.index, b"")
            confs.append((e.data, cs))
            return
        applied = self.sm.apply(e.index, e.data, self._requests.get(e.data))
        if applied.events:
            events.append(applied.events)
        if e.data in self._waiting:
            results.append((e.data, applied.result))

    def _release_reads(self) -> None:
        if not self._reads_to_apply:
            return
        applied = self.sm.applied_index
        keep = []
        for index, waiters in self._reads_to_apply:
            if index <= applied:
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
            else:
                keep.append((index, waiters))
        self._reads_to_apply = keep

    def _on_soft_state(self, rd: Ready) -> None:
        soft = rd.soft_state
        assert soft is not None
        log.info("member %x: %s, leader %x, term %d", self.raw.raft.id, soft.role.value,
                 soft.lead, self.raw.raft.term)
        for listener in self.on_leadership:
            listener(soft.role is StateRole.LEADER)
        if soft.role is not StateRole.LEADER and self._read_batches:
            # Reads in flight through a leader that is gone will never be answered:
            # retry them with the next leader.
            for waiters in self._read_batches.values():
                self._read_waiters.extend(w for w in waiters if not w.done())
            self._read_batches.clear()
            self._read_started.clear()

    def _install_snapshot(self, data: bytes, index: int) -> None:
        data, extra = split_snapshot_data(data)
        self.sm.restore(data)
        if self.sm.applied_index < index:  # entries in between would never be applied
            raise RaftInvariantError(f"snapshot at {index} carries the state at "
                                     f"{self.sm.applied_index}")
        if extra is not None and self.snapshot_extra is not None:
            self.snapshot_extra[1](extra, index)
        for hook in self.on_snapshot_installed:
            hook(index)

    def _snapshot(self, applied: int, conf_state: ConfState) -> None:
        """Record a snapshot at ``applied`` and compact the log (on the I/O thread). The
        snapshot carries no data (see :meth:`_maybe_snapshot`)."""
        self.storage.create_snapshot(applied, conf_state, b"")
        keep_from = applied - self.cfg.snapshot_catchup_entries
        if keep_from > self.storage.first_index():
            self.storage.compact(keep_from, defer_cleanup=True)
        log.info("snapshot at %d, log compacted below %d", applied,
                 max(keep_from, self.storage.first_index()))

    def _fail_all(self, exc: RaftKVError) -> None:
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(exc)
        for cfut in self._conf_waiting.values():
            if not cfut.done():
                cfut.set_exception(exc)
        for waiters in [self._read_waiters, *self._read_batches.values(),
                        *(w for _, w in self._reads_to_apply)]:
            for w in waiters:
                if not w.done():
                    w.set_exception(exc)
