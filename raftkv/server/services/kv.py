"""``etcdserverpb.KV``: Range, Put, DeleteRange (Txn and Compact come with the etcd API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from raftkv.errors import InvalidRequestError, RaftKVError
from raftkv.server.node import NodeDriver
from raftkv.state.commands import Command, ErrorResult, Response
from raftkv.state.machine import error_to_exception
from raftkv.wire import etcd_convert as ec
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.status import KEY_NOT_PROVIDED, REQUEST_TOO_LARGE, to_status

Ctx = grpc.aio.ServicerContext[object, object]
T = TypeVar("T")


class Header:
    """Builds the ResponseHeader every etcd response carries."""

    def __init__(self, cluster_id: int, member_id: int, driver: NodeDriver) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.driver = driver

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
        await context.abort(code, message)
        raise  # unreachable: abort raises


class KVService(rpc_pb2_grpc.KVServicer):
    def __init__(self, driver: NodeDriver, header: Header, max_request_bytes: int) -> None:
        self.driver = driver
        self.header = header
        self.max_request_bytes = max_request_bytes

    def _check(self, key: bytes, size: int) -> None:
        if not key:
            raise InvalidRequestError(KEY_NOT_PROVIDED)
        if size > self.max_request_bytes:
            raise InvalidRequestError(REQUEST_TOO_LARGE)

    async def _write(self, op: Command) -> Response:
        result = await self.driver.propose(op)
        if isinstance(result, ErrorResult):
            raise error_to_exception(result)
        return result

    async def Range(self, request: rpc_pb2.RangeRequest,
                    context: Ctx) -> rpc_pb2.RangeResponse:
        async def run() -> rpc_pb2.RangeResponse:
            self._check(request.key, request.ByteSize())
            if not request.serializable:
                await self.driver.read_barrier()
            result = self.driver.sm.range(ec.range_from_pb(request))
            return ec.range_result_to_pb(result, self.header())
        return await guarded(context, run)

    async def Put(self, request: rpc_pb2.PutRequest,
                  context: Ctx) -> rpc_pb2.PutResponse:
        async def run() -> rpc_pb2.PutResponse:
            self._check(request.key, request.ByteSize())
            result = await self._write(ec.put_from_pb(request))
            return ec.put_result_to_pb(result, self.header(result.revision))  # type: ignore[arg-type,union-attr]
        return await guarded(context, run)

    async def DeleteRange(self, request: rpc_pb2.DeleteRangeRequest,
                          context: Ctx) -> rpc_pb2.DeleteRangeResponse:
        async def run() -> rpc_pb2.DeleteRangeResponse:
            self._check(request.key, request.ByteSize())
            result = await self._write(ec.delete_from_pb(request))
            return ec.delete_result_to_pb(result, self.header(result.revision))  # type: ignore[arg-type,union-attr]
        return await guarded(context, run)
