"""``v3lockpb.Lock``: Lock and Unlock, etcd's mutex recipe run inside the server.

The algorithm is etcd's ``clientv3/concurrency`` mutex (etcd-api.md §6), run against the
local state machine instead of through a client:

1. The waiter key is ``name + "/" + hex(lease)``. One txn creates it with the caller's lease
   if it is absent (so locking again with the same lease is idempotent) and reads the first
   key of the prefix by create revision (the owner).
2. The caller owns the lock when its key has the lowest create revision under the prefix.
3. Otherwise it waits for the deletion of its **immediate predecessor only** (the key with
   the highest create revision below its own), then looks again: no herd effect.
4. The returned key's ``create_revision`` is the fencing token: it is unique and grows with
   every grant. A guarded write compares it in a txn.

Waits are driven by :attr:`NodeDriver.on_events`, so any member can serve them: a member's
applied state only moves forward, and a waiter's predecessor set only shrinks once its own
key exists. As in etcd's main branch (the fix for etcd #11456), a waiter whose own key
vanished (its lease expired or was revoked) gets ``mutex: session is expired`` instead of a
lock it does not hold; this module notices that as soon as the key is deleted.

With ``lease == 0`` the server grants a lease of 60 s on the caller's behalf and does not
keep it alive, as etcd's orphaned session does; its id is the hex suffix of the returned key.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TypeVar

import grpc

from raftkv.errors import AuthError, InvalidRequestError
from raftkv.server.audit import audit
from raftkv.server.auth import check_needs
from raftkv.server.auth_context import PRINCIPAL
from raftkv.server.lease_keeper import clock_ms
from raftkv.server.node import NodeDriver
from raftkv.server.services.kv import Ctx, Header, guarded
from raftkv.state.authz import lock_footprint
from raftkv.state.commands import (
    Command,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    ErrorResult,
    Event,
    EventType,
    KeyValue,
    LeaseGrant,
    LeaseGrantResult,
    Put,
    Range,
    RangeResult,
    Response,
    SortOrder,
    SortTarget,
    Txn,
    TxnResult,
)
from raftkv.state.machine import error_to_exception
from raftkv.wire.pb.v3lockpb import v3lock_pb2, v3lock_pb2_grpc
from raftkv.wire.status import KEY_NOT_PROVIDED

T = TypeVar("T")

SESSION_EXPIRED = "mutex: session is expired"
SESSION_TTL_S = 60


class RecipeError(Exception):
    """A plain Go error of etcd's lock / election recipes (``election: not leader`` …):
    etcd sends it as gRPC ``UNKNOWN`` with exactly this text."""


def waiter_key(name: bytes, lease: int) -> bytes:
    """``name/<lease in lowercase hex>`` (Go ``%x``: no padding, ``-`` for negatives)."""
    return name + b"/" + format(lease, "x").encode()


def prefix_end(prefix: bytes) -> bytes:
    """The range end covering every key that starts with ``prefix`` (clientv3 GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def first_created(prefix: bytes) -> Range:
    """The key of ``prefix`` with the lowest create revision (clientv3 WithFirstCreate)."""
    return Range(prefix, prefix_end(prefix), limit=1, sort_order=SortOrder.ASCEND,
                 sort_target=SortTarget.CREATE)


def created_is(key: bytes, revision: int) -> Compare:
    return Compare(key, CompareTarget.CREATE, CompareResult.EQUAL, revision)


async def recipe_guarded(context: Ctx, call: Callable[[], Awaitable[T]]) -> T:
    """:func:`guarded`, plus a :class:`RecipeError` sent as etcd sends it (UNKNOWN); so is
    an auth error: etcd runs these recipes through its own client, whose errors reach the
    caller as plain Go errors (UNKNOWN with etcd's message)."""
    async def auth_as_recipe() -> T:
        try:
            return await call()
        except AuthError as exc:
            p = PRINCIPAL.get()
            audit("denied", user=p.user if p is not None else "", error=str(exc),
                  peer=context.peer())
            raise RecipeError(str(exc)) from None

    try:
        return await guarded(context, auth_as_recipe)
    except RecipeError as exc:
        await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        raise  # unreachable: abort raises


def range_kvs(res: TxnResult, i: int) -> tuple[KeyValue, ...]:
    """The kvs of the ``i``-th op result of ``res``, which is a range."""
    r = res.responses[i]
    if not isinstance(r, RangeResult):
        raise TypeError(f"op {i} of the txn is not a range")
    return r.kvs


class Subscription:
    """The applied events of the keys a predicate selects, queued from subscription on."""

    def __init__(self, selects: Callable[[bytes], bool]) -> None:
        self.selects = selects
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def next_after(self, revision: int) -> Event:
        """The next queued event newer than ``revision`` (older ones were already seen by
        a read at ``revision``: applied, but handed out after the read)."""
        while True:
            ev = await self.queue.get()
            if ev.kv.mod_revision > revision:
                return ev


class EventHub:
    """Fans the driver's applied events out to subscriptions (on the event loop)."""

    def __init__(self, driver: NodeDriver) -> None:
        self._subs: set[Subscription] = set()
        driver.on_events.append(self._dispatch)

    def _dispatch(self, events: Sequence[Event]) -> None:
        if not self._subs:
            return
        for ev in events:
            for sub in self._subs:
                if sub.selects(ev.kv.key):
                    sub.queue.put_nowait(ev)

    @contextmanager
    def subscribe(self, selects: Callable[[bytes], bool]) -> Iterator[Subscription]:
        sub = Subscription(selects)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)


class Recipes:
    """The mutex steps shared by Lock and Election (election is composed from the lock)."""

    def __init__(self, driver: NodeDriver) -> None:
        self.driver = driver
        self.hub = EventHub(driver)
        self._cleanups: set[asyncio.Task[None]] = set()

    async def write(self, op: Command) -> Response:
        result = await self.driver.propose(op)
        if isinstance(result, ErrorResult):
            raise error_to_exception(result)
        return result

    async def session_lease(self, lease: int) -> int:
        """``lease``, or for 0 a new orphaned lease (etcd's ``NewSession`` default TTL)."""
        if lease != 0:
            return lease
        lease_id = secrets.randbits(63) or 1
        result = await self.write(LeaseGrant(lease_id, SESSION_TTL_S, clock_ms()))
        assert isinstance(result, LeaseGrantResult)
        return result.id

    async def txn(self, txn: Txn) -> TxnResult:
        result = await self.write(txn)
        assert isinstance(result, TxnResult)
        return result

    def get(self, key: bytes) -> KeyValue | None:
        """``key`` in this member's applied state."""
        kvs = self.driver.sm.range(Range(key)).kvs
        return kvs[0] if kvs else None

    async def wait_turn(self, prefix: bytes, my_key: bytes, my_rev: int) -> int:
        """Wait until no key of ``prefix`` was created before ``my_rev``; return the header
        revision of the final check that ``my_key`` still exists.

        On any failure (including cancellation by the client) the waiter key is removed
        if it is still the one created at ``my_rev``, as etcd does.

        Raises:
            RecipeError: ``my_key`` was deleted meanwhile (``mutex: session is expired``).
        """
        try:
            await self._wait_predecessors(prefix, my_key, my_rev)
            await self.driver.read_barrier()
            rr = self.driver.sm.range(Range(my_key))
        except BaseException:
            self.remove_later(my_key, my_rev)
            raise
        if not rr.kvs or rr.kvs[0].create_revision != my_rev:
            raise RecipeError(SESSION_EXPIRED)
        return rr.revision

    async def _wait_predecessors(self, prefix: bytes, my_key: bytes, my_rev: int) -> None:
        before_me = Range(prefix, prefix_end(prefix), limit=1, sort_order=SortOrder.DESCEND,
                          sort_target=SortTarget.CREATE, max_create_revision=my_rev - 1)
        while True:
            watched = {my_key}
            # Subscribing and reading with no await in between: every deletion the read
            # does not show reaches the subscription.
            with self.hub.subscribe(watched.__contains__) as sub:
                rr = self.driver.sm.range(before_me)
                if not rr.kvs:
                    return
                watched.add(rr.kvs[0].key)
                mine = self.get(my_key)
                if mine is None or mine.create_revision != my_rev:
                    raise RecipeError(SESSION_EXPIRED)
                while True:
                    ev = await sub.next_after(rr.revision)
                    if ev.type is not EventType.DELETE:
                        continue
                    if ev.kv.key == my_key:
                        raise RecipeError(SESSION_EXPIRED)
                    break

    def remove_later(self, key: bytes, created: int) -> None:
        """Delete ``key`` if it is still the incarnation created at ``created`` (in the
        background: the request that owned it may already be cancelled)."""
        async def remove() -> None:
            with suppress(Exception):  # best effort: the lease removes it otherwise
                await self.write(Txn((created_is(key, created),), (DeleteRange(key),)))
        task = asyncio.get_running_loop().create_task(remove())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)


class LockService(v3lock_pb2_grpc.LockServicer):
    """``v3lockpb.Lock`` (see the module docstring)."""

    def __init__(self, recipes: Recipes, header: Header) -> None:
        self.r = recipes
        self.header = header

    async def Lock(self, request: v3lock_pb2.LockRequest,
                   context: Ctx) -> v3lock_pb2.LockResponse:
        async def run() -> v3lock_pb2.LockResponse:
            check_needs(self.r.driver.sm, lock_footprint(request.name))
            lease = await self.r.session_lease(request.lease)
            key = waiter_key(request.name, lease)
            prefix = request.name + b"/"
            owner = first_created(prefix)
            res = await self.r.txn(Txn((created_is(key, 0),),
                                       (Put(key, b"", lease), owner),
                                       (Range(key), owner)))
            my_rev = res.revision
            if not res.succeeded:
                my_rev = range_kvs(res, 0)[0].create_revision
            owners = range_kvs(res, 1)
            if not owners or owners[0].create_revision == my_rev:
                return v3lock_pb2.LockResponse(header=self.header(res.revision), key=key)
            revision = await self.r.wait_turn(prefix, key, my_rev)
            return v3lock_pb2.LockResponse(header=self.header(revision), key=key)
        return await recipe_guarded(context, run)

    async def Unlock(self, request: v3lock_pb2.UnlockRequest,
                     context: Ctx) -> v3lock_pb2.UnlockResponse:
        async def run() -> v3lock_pb2.UnlockResponse:
            if not request.key:
                raise InvalidRequestError(KEY_NOT_PROVIDED)
            result = await self.r.write(DeleteRange(request.key))
            assert isinstance(result, DeleteResult)
            return v3lock_pb2.UnlockResponse(header=self.header(result.revision))
        return await recipe_guarded(context, run)
