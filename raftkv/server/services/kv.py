"""``etcdserverpb.KV``: Range, Put, DeleteRange, Txn, Compact.

Requests are validated (etcd's ``v3rpc/key.go`` checks, with its exact messages) before
anything is proposed. Writes go through the log; reads -- Range and read-only Txn -- are
served from this member's state after a ReadIndex barrier, or at once when serializable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from raftkv.errors import AuthError, InvalidRequestError, RaftKVError
from raftkv.server import failpoints
from raftkv.server.audit import audit
from raftkv.server.auth import check_read
from raftkv.server.auth_context import PRINCIPAL
from raftkv.server.node import NodeDriver
from raftkv.state.commands import (
    Command,
    CompactResult,
    DeleteResult,
    ErrorResult,
    PutResult,
    Range,
    Response,
    Txn,
    TxnResult,
)
from raftkv.state.machine import error_to_exception
from raftkv.state.txn import MAX_TXN_OPS, is_read_only, validate
from raftkv.wire import etcd_convert as ec
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.status import KEY_NOT_PROVIDED, REQUEST_TOO_LARGE, to_status

Ctx = grpc.aio.ServicerContext[object, object]
T = TypeVar("T")
R = TypeVar("R", bound=Response)

REQUEST_ID_KEY = "raftkv-request-id"
"""Metadata naming a write for de-duplication: ``<client id hex>-<seq>-<ack>`` (ack: the
lowest seq the client still waits for). Same value as :mod:`raftkv.client._transport`."""
PROBE_KEY = "raftkv-probe"
DEDUP_KEY = "raftkv-dedup"
"""A Range carrying ``raftkv-probe: dedup`` is answered with trailing ``raftkv-dedup: 1``:
how a client learns that retrying its writes is safe here (etcd ignores both)."""
NO_SPACE_MESSAGE = "etcdserver: mvcc: database space exceeded"


async def refuse_without_space(no_space: Callable[[], bool], context: Ctx) -> None:
    """While a NOSPACE alarm is active, refuse a request that adds data (Put, a Txn with a
    put, LeaseGrant) with etcd's error; reads and deletes still work. Checked at the top of
    those handlers rather than in a server interceptor, which grpc.aio runs as one more
    coroutine, with a new handler object, on every call."""
    if no_space():
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, NO_SPACE_MESSAGE)


def txn_puts(request: rpc_pb2.TxnRequest) -> bool:
    """Whether either branch of a TxnRequest (nested ones included) has a put."""
    for op in (*request.success, *request.failure):
        kind = op.WhichOneof("request")
        if kind == "request_put" or (kind == "request_txn" and txn_puts(op.request_txn)):
            return True
    return False


def request_id(context: Ctx) -> tuple[int, int, int] | None:
    """The ``(client_id, seq, ack)`` of a write, from its metadata; ``None`` if absent.

    Raises:
        InvalidRequestError: the metadata is malformed.
    """
    for key, value in context.invocation_metadata() or ():
        if key != REQUEST_ID_KEY:
            continue
        text = value.decode() if isinstance(value, bytes) else value
        try:
            cid, seq, ack = text.split("-")
            parsed = int(cid, 16), int(seq), int(ack)
        except ValueError:
            parsed = (0, 0, 0)
        if not 0 < parsed[0] < 1 << 63 or not 0 < parsed[1] < 1 << 63 \
                or not 0 <= parsed[2] < 1 << 63:
            raise InvalidRequestError(f"raftkv: malformed {REQUEST_ID_KEY} {text!r}: use "
                                      "<client id hex>-<seq>-<ack>, e.g. 1f3a-7-5")
        return parsed
    return None


def answer_probe(context: Ctx) -> None:
    """Tell a client that asks that this server de-duplicates writes."""
    for key, value in context.invocation_metadata() or ():
        if key == PROBE_KEY and value in ("dedup", b"dedup"):
            context.set_trailing_metadata(((DEDUP_KEY, "1"),))


class Header:
    """Builds the ResponseHeader every etcd response carries."""

    def __init__(self, cluster_id: int, member_id: int, driver: NodeDriver) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.driver = driver

    def without_revision(self) -> rpc_pb2.ResponseHeader:
        """The header etcd's Cluster service sends: no revision (it stays 0)."""
        return rpc_pb2.ResponseHeader(cluster_id=self.cluster_id, member_id=self.member_id,
                                      raft_term=self.driver.raw.raft.term)

    def __call__(self, revision: int = 0) -> rpc_pb2.ResponseHeader:
        d = self.driver
        return rpc_pb2.ResponseHeader(cluster_id=self.cluster_id, member_id=self.member_id,
                                      revision=revision or d.sm.revision,
                                      raft_term=d.raw.raft.term)


async def guarded(context: Ctx, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call``; turn a raftkv error into etcd's status and message."""
    try:
        return await call()
    except RaftKVError as exc:
        code, message = to_status(exc)
        if isinstance(exc, AuthError):
            p = PRINCIPAL.get()
            audit("denied", user=p.user if p is not None else "", error=message,
                  peer=context.peer())
        await context.abort(code, message)
        raise  # unreachable: abort raises


def txn_serializable(txn: Txn) -> bool:
    """etcd ``isTxnSerializable``: every op of both branches is a serializable range (a
    nested txn makes it linearizable)."""
    return all(isinstance(op, Range) and op.serializable for op in (*txn.success, *txn.failure))


class KVService(rpc_pb2_grpc.KVServicer):
    def __init__(self, driver: NodeDriver, header: Header, max_request_bytes: int,
                 max_txn_ops: int = MAX_TXN_OPS,
                 no_space: Callable[[], bool] = lambda: False) -> None:
        self.driver = driver
        self.header = header
        self.max_request_bytes = max_request_bytes
        self.max_txn_ops = max_txn_ops
        self.no_space = no_space

    def _check_size(self, size: int) -> None:
        if size > self.max_request_bytes:
            raise InvalidRequestError(REQUEST_TOO_LARGE)

    def _check(self, key: bytes, size: int) -> None:
        if not key:
            raise InvalidRequestError(KEY_NOT_PROVIDED)
        self._check_size(size)

    async def _write(self, op: Command, kind: type[R], context: Ctx | None = None) -> R:
        """Validate ``op`` as etcd does before proposing, propose it (with the request id
        in ``context``'s metadata, if any), return its result."""
        validate(op, self.max_txn_ops)
        rid = request_id(context) if context is not None else None
        result = await self.driver.propose(op, rid) if rid else await self.driver.propose(op)
        if isinstance(result, ErrorResult):
            raise error_to_exception(result)
        if not isinstance(result, kind):
            raise TypeError(f"{type(op).__name__} applied as {type(result).__name__}")
        return result

    async def Range(self, request: rpc_pb2.RangeRequest,
                    context: Ctx) -> rpc_pb2.RangeResponse:
        async def run() -> rpc_pb2.RangeResponse:
            self._check(request.key, request.ByteSize())
            answer_probe(context)
            op = ec.range_from_pb(request)
            if not request.serializable and not failpoints.active("kv-stale-read"):
                await self.driver.read_barrier()
            check_read(self.driver.sm, op)
            result = self.driver.sm.range(op)
            return ec.range_result_to_pb(result, self.header())
        return await guarded(context, run)

    async def Put(self, request: rpc_pb2.PutRequest,
                  context: Ctx) -> rpc_pb2.PutResponse:
        await refuse_without_space(self.no_space, context)

        async def run() -> rpc_pb2.PutResponse:
            self._check(request.key, request.ByteSize())
            result = await self._write(ec.put_from_pb(request), PutResult, context)
            return ec.put_result_to_pb(result, self.header(result.revision))
        return await guarded(context, run)

    async def DeleteRange(self, request: rpc_pb2.DeleteRangeRequest,
                          context: Ctx) -> rpc_pb2.DeleteRangeResponse:
        async def run() -> rpc_pb2.DeleteRangeResponse:
            self._check(request.key, request.ByteSize())
            result = await self._write(ec.delete_from_pb(request), DeleteResult, context)
            return ec.delete_result_to_pb(result, self.header(result.revision))
        return await guarded(context, run)

    async def Txn(self, request: rpc_pb2.TxnRequest,
                  context: Ctx) -> rpc_pb2.TxnResponse:
        if txn_puts(request):
            await refuse_without_space(self.no_space, context)

        async def run() -> rpc_pb2.TxnResponse:
            self._check_size(request.ByteSize())
            ec.check_txn_ops(request, self.max_txn_ops)
            txn = ec.txn_from_pb(request)
            validate(txn, self.max_txn_ops)
            if not is_read_only(txn):
                result = await self._write(txn, TxnResult, context)
                return ec.txn_result_to_pb(result, self.header(result.revision))
            if not txn_serializable(txn) and not failpoints.active("kv-stale-read"):
                await self.driver.read_barrier()
            check_read(self.driver.sm, txn)
            result = self.driver.sm.read_txn(txn)
            return ec.txn_result_to_pb(result, self.header(result.revision))
        return await guarded(context, run)

    async def Compact(self, request: rpc_pb2.CompactionRequest,
                      context: Ctx) -> rpc_pb2.CompactionResponse:
        async def run() -> rpc_pb2.CompactionResponse:
            self._check_size(request.ByteSize())
            result = await self._write(ec.compact_from_pb(request), CompactResult,
                                       context)
            return ec.compact_result_to_pb(result, self.header(result.revision))
        return await guarded(context, run)
