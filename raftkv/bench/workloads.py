"""One operation of each workload, as raw ``grpc.aio`` calls on the etcd v3 API.

Each worker of a client process gets its own operation (a closure over its channel, a
random generator and whatever state it keeps, such as its lease or the revisions its CAS
expects). An operation raises :class:`grpc.aio.AioRpcError` when the server refuses it and
:class:`GuardFailedError` when a lock's guarded write finds the lock gone.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import grpc

from raftkv.bench.config import BenchConfig
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2, v3lock_pb2_grpc

METADATA: tuple[tuple[str, str], ...] | None = None
"""The token metadata of this process (``--user``), sent with put, get and txn calls as
they are made: a client interceptor would cost the client more than the server's check."""
DIRECT = ("put", "get", "txn")
"""The workloads whose calls carry :data:`METADATA` themselves."""

Op = Callable[[], Awaitable[None]]

_CMP = rpc_pb2.Compare
_LOCK_TTL_MARGIN_S = 60


class GuardFailedError(Exception):
    """A guarded write under a lock found the lock key gone (the lock was lost)."""


class Counters:
    """Workload-specific counts a report shows next to the figures (CAS misses …)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n


def key_of(cfg: BenchConfig, i: int) -> bytes:
    return cfg.prefix + b"%08d" % i


def value_of(cfg: BenchConfig, rng: random.Random) -> bytes:
    return rng.randbytes(cfg.value_size)


async def make_op(cfg: BenchConfig, channel: grpc.aio.Channel, rng: random.Random,
                  counters: Counters) -> Op:
    """The operation one worker repeats for ``cfg.workload`` (not ``watch``)."""
    kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    value = value_of(cfg, rng)
    timeout = cfg.timeout_s
    keys = cfg.keys

    if cfg.workload == "put":
        async def put() -> None:
            await kv.Put(rpc_pb2.PutRequest(key=key_of(cfg, rng.randrange(keys)), value=value),
                         timeout=timeout, metadata=METADATA)
        return put

    if cfg.workload == "get":
        serializable = cfg.serializable

        async def get() -> None:
            await kv.Range(rpc_pb2.RangeRequest(key=key_of(cfg, rng.randrange(keys)),
                                                serializable=serializable),
                           timeout=timeout, metadata=METADATA)
        return get

    if cfg.workload == "txn":
        return _cas_op(cfg, kv, rng, value, counters)
    if cfg.workload == "lock":
        return await _lock_op(cfg, channel, kv, rng, value, counters)
    raise ValueError(f"no single operation for workload {cfg.workload!r}")


def _cas_op(cfg: BenchConfig, kv: rpc_pb2_grpc.KVStub, rng: random.Random, value: bytes,
            counters: Counters) -> Op:
    """Compare-and-swap: put the key if its mod revision is the one this worker last saw,
    else read it (and expect that revision next time)."""
    seen: dict[bytes, int] = {}

    async def cas() -> None:
        key = key_of(cfg, rng.randrange(cfg.keys))
        expect = seen.get(key, 0)
        req = rpc_pb2.TxnRequest(
            compare=[_CMP(key=key, target=_CMP.MOD, result=_CMP.EQUAL, mod_revision=expect)],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))])
        resp = await kv.Txn(req, timeout=cfg.timeout_s, metadata=METADATA)
        if resp.succeeded:
            seen[key] = resp.header.revision
            counters.add("cas_swapped")
        else:
            kvs = resp.responses[0].response_range.kvs
            seen[key] = kvs[0].mod_revision if kvs else 0
            counters.add("cas_missed")
    return cas


async def _lock_op(cfg: BenchConfig, channel: grpc.aio.Channel, kv: rpc_pb2_grpc.KVStub,
                   rng: random.Random, value: bytes, counters: Counters) -> Op:
    """Acquire a lock (v3lock, with this worker's lease), write a key guarded by the lock
    key still existing, release the lock."""
    lease_stub = rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]
    lock_stub = v3lock_pb2_grpc.LockStub(channel)  # type: ignore[no-untyped-call]
    ttl = int(cfg.warmup_s + cfg.duration_s + cfg.timeout_s) + _LOCK_TTL_MARGIN_S
    grant = await lease_stub.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl),
                                        timeout=cfg.timeout_s)
    lease = grant.ID

    async def lock_cycle() -> None:
        n = rng.randrange(cfg.keys)
        name = cfg.prefix + b"lock/%08d" % n
        held = await lock_stub.Lock(v3lock_pb2.LockRequest(name=name, lease=lease),
                                    timeout=cfg.timeout_s)
        try:
            guard = _CMP(key=held.key, target=_CMP.VERSION, result=_CMP.GREATER, version=0)
            put = rpc_pb2.PutRequest(key=key_of(cfg, n), value=value)
            resp = await kv.Txn(rpc_pb2.TxnRequest(
                compare=[guard], success=[rpc_pb2.RequestOp(request_put=put)]),
                timeout=cfg.timeout_s)
            if not resp.succeeded:
                raise GuardFailedError(name.decode(errors="replace"))
        finally:
            await lock_stub.Unlock(v3lock_pb2.UnlockRequest(key=held.key),
                                   timeout=cfg.timeout_s)
        counters.add("guarded_writes")
    return lock_cycle


async def preload(cfg: BenchConfig, channel: grpc.aio.Channel, batch: int = 100) -> None:
    """Write every key of the key space once (``batch`` puts per txn)."""
    kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    value = value_of(cfg, random.Random(0))
    for lo in range(0, cfg.keys, batch):
        ops = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key_of(cfg, i),
                                                                value=value))
               for i in range(lo, min(cfg.keys, lo + batch))]
        await kv.Txn(rpc_pb2.TxnRequest(success=ops), timeout=max(30.0, cfg.timeout_s),
                     metadata=METADATA)
