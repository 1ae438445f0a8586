"""``lock``: a v3lock mutex with a lease, fenced writes, and the unfenced contrast.

One hold by a client:

1. grant a lease (TTL :data:`TTL_S`) and keep it alive from a background task;
2. ``acquire``: ``v3lock.Lock`` with that lease, then a linearizable Range of the returned
   key: its ``create_revision`` is the fencing token (the op is ``info`` if the key is
   already gone, or the call timed out: maybe acquired);
3. sometimes *pause* (a GC pause or a stopped VM, Jepsen's scenario): the keep-alive stops
   and the client sleeps past the TTL, so the lease expires and another client may take the
   lock while this one still believes it holds it;
4. ``uwrite``: a plain put of ``chaos/lock/unfenced`` with no guard at all;
5. ``write``: a txn that puts ``chaos/lock/fenced`` only if the lock key's
   ``create_revision`` still equals the token (else a definite ``fail``: fenced);
6. ``release``: ``v3lock.Unlock``, then revoke the lease.

Checks: the fenced ``write``s and the acquires pass :func:`chaos.checkers.check_lock`
(tokens strictly increase, accepted guarded writes never go back to an earlier holder);
the same check over the unfenced ``uwrite``s is a *finding*, expected to fail after pauses
and reported, not counted as a violation: it is why locks need fencing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Sequence

from chaos.checkers import check_lock
from chaos.client import Client, Refused
from chaos.history import EventType, History, Value
from chaos.workloads import Check, Workload, client_ops, count_outcomes
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.v3lockpb import v3lock_pb2

__all__ = ["LockWorkload"]

PREFIX = b"chaos/lock/"
"""Every key of the workload: the lock's keys (``mutex/<lease>``, which v3lock needs
READWRITE on under auth), ``fenced`` and ``unfenced``."""
LOCK = PREFIX + b"mutex"
FENCED = PREFIX + b"fenced"
UNFENCED = PREFIX + b"unfenced"
TTL_S = 2
PAUSE_P = 0.2


class LockWorkload(Workload):
    """See the module docstring."""

    name = "lock"
    prefix = PREFIX

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._payload = itertools.count(1)

    async def step(self, client: Client) -> None:
        try:
            grant = await client.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=TTL_S),
                                                  timeout=client.timeout_s)
        except Exception:  # no lease, no hold; nothing recorded
            await asyncio.sleep(0.2)
            return
        lease = int(grant.ID)
        try:
            async with _keepalive(client, lease) as stop:
                await self._hold(client, lease, stop)
        finally:
            with contextlib.suppress(Exception):
                await client.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease),
                                               timeout=client.timeout_s)

    async def _hold(self, client: Client, lease: int, stop_keepalive: asyncio.Event) -> None:
        key_box: list[bytes] = []

        async def acquire() -> Value:
            resp = await client.lock.Lock(v3lock_pb2.LockRequest(name=LOCK, lease=lease),
                                          timeout=3 * TTL_S + client.timeout_s)
            key_box.append(resp.key)
            got = await client.kv.Range(rpc_pb2.RangeRequest(key=resp.key),
                                        timeout=client.timeout_s)
            if not got.kvs:
                raise TimeoutError("lock key gone before its token was read")
            return int(got.kvs[0].create_revision)

        status, token = await client.op("acquire", None, None, acquire)
        if status is not EventType.OK or not isinstance(token, int):
            return
        if self.rng.random() < PAUSE_P:
            stop_keepalive.set()
            await asyncio.sleep(TTL_S + 1.5 + self.rng.random())
        for _ in range(self.rng.randint(1, 2)):
            if not await self._writes(client, key_box[0], token):
                return
        async def release() -> Value:
            await client.lock.Unlock(v3lock_pb2.UnlockRequest(key=key_box[0]),
                                     timeout=client.timeout_s)
            return None
        await client.op("release", None, token, release)

    async def _writes(self, client: Client, key: bytes, token: int) -> bool:
        """One unfenced then one fenced write; False once the hold should end (a write
        was fenced off, or its outcome is unknown)."""
        payload = next(self._payload)
        value = f"{token}:{payload}".encode()
        guard = rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.CREATE,
                                result=rpc_pb2.Compare.EQUAL, create_revision=token)
        put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=FENCED, value=value))

        async def fenced() -> Value:
            resp = await client.kv.Txn(rpc_pb2.TxnRequest(compare=[guard], success=[put]),
                                       timeout=client.timeout_s)
            if not resp.succeeded:
                raise Refused("fenced: the lock key's create_revision changed")
            return None

        async def unfenced() -> Value:
            await client.kv.Put(rpc_pb2.PutRequest(key=UNFENCED, value=value),
                                timeout=client.timeout_s)
            return None

        status, _ = await client.op("uwrite", None, (token, payload), unfenced)
        if status is not EventType.OK:
            return False
        status, _ = await client.op("write", None, (token, payload), fenced)
        return status is EventType.OK

    def check(self, history: History) -> list[Check]:
        ops = client_ops(history)
        fenced = check_lock(ops)
        unfenced = check_lock(ops, write_f="uwrite")
        counts = count_outcomes(ops)
        fenced_counts = {**counts, "acquires": fenced.acquires, "writes": fenced.writes,
                         "fenced_rejected": sum(o.f == "write" and o.status.value == "fail"
                                                for o in ops),
                         "anomalies": len(fenced.anomalies)}
        unfenced_counts = {"acquires": unfenced.acquires, "writes": unfenced.writes,
                           "anomalies": len(unfenced.anomalies)}
        return [
            Check("lock-fenced", fenced.valid, fenced_counts, fenced.render(),
                  window=_window(fenced.anomalies)),
            Check("lock-unfenced", unfenced.valid, unfenced_counts,
                  "finding (expected to fail after pauses; not a violation):\n"
                  + unfenced.render(), finding=True, window=_window(unfenced.anomalies)),
        ]


def _window(anomalies: Sequence[object]) -> list[int]:
    out: list[int] = []
    for a in anomalies[:5]:
        op = getattr(a, "op", None)
        earlier = getattr(a, "earlier", None)
        out += [o.index for o in (earlier, op) if o is not None]
    return out


@contextlib.asynccontextmanager
async def _keepalive(client: Client, lease: int) -> AsyncIterator[asyncio.Event]:
    """Keep ``lease`` alive every TTL/4 until the block ends or the event is set."""
    stop = asyncio.Event()

    async def requests() -> AsyncIterator[rpc_pb2.LeaseKeepAliveRequest]:
        while not stop.is_set():
            yield rpc_pb2.LeaseKeepAliveRequest(ID=lease)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TTL_S / 4)

    async def run() -> None:
        with contextlib.suppress(Exception):
            async for _ in client.lease.LeaseKeepAlive(requests()):
                pass

    task = asyncio.create_task(run())
    try:
        yield stop
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
