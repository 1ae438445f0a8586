"""``etcdserverpb.Watch``: the bidirectional watch stream (etcd 3.4 ``v3rpc/watch.go``).

The hub (:mod:`raftkv.server.watch_hub`) decides what to send; this module decodes requests,
encodes responses, and ends the stream: a client that half-closes keeps receiving (as in
etcd); a stream whose client sent ``hasleader: true`` is ended with ``Unavailable
"etcdserver: no leader"`` after three election timeouts in a row without a leader, so a
member cut off from the cluster does not serve a stale watch forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from raftkv.errors import AuthError
from raftkv.server.auth import check_needs
from raftkv.server.services.kv import Ctx, Header
from raftkv.server.watch_hub import Out, WatchHub, WatchSpec, WatchStream
from raftkv.state.authz import watch_footprint
from raftkv.wire.etcd_convert import kv_to_pb
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.mvccpb import kv_pb2
from raftkv.wire.status import to_status

MSG_NO_LEADER = "etcdserver: no leader"
_GO_CODES = {grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
             grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
             grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated"}
"""grpc-go's names of the codes a watch denial carries in its text."""
NO_LEADER_CHECKS = 3
"""etcd's ``maxNoLeaderCnt``: leaderless checks (one per election timeout) before cancel."""


def spec_from_pb(p: rpc_pb2.WatchCreateRequest) -> WatchSpec:
    """etcd's create normalisation: an empty key is ``"\\0"``, the smallest key."""
    filters = set(p.filters)
    return WatchSpec(key=p.key or b"\0", range_end=p.range_end,
                     start_revision=p.start_revision, prev_kv=p.prev_kv,
                     no_put=rpc_pb2.WatchCreateRequest.NOPUT in filters,
                     no_delete=rpc_pb2.WatchCreateRequest.NODELETE in filters,
                     progress_notify=p.progress_notify, watch_id=p.watch_id)


def out_to_pb(out: Out, header: Header) -> rpc_pb2.WatchResponse:
    events = []
    for ev in out.events:
        pev = kv_pb2.Event(type=int(ev.type), kv=kv_to_pb(ev.kv))  # type: ignore[arg-type]
        if out.prev_kv and ev.prev_kv is not None:
            pev.prev_kv.CopyFrom(kv_to_pb(ev.prev_kv))
        events.append(pev)
    return rpc_pb2.WatchResponse(header=header(out.revision), watch_id=out.watch_id,
                                 created=out.created, canceled=out.canceled,
                                 compact_revision=out.compact_revision,
                                 cancel_reason=out.cancel_reason, events=events)


class WatchService(rpc_pb2_grpc.WatchServicer):
    def __init__(self, hub: WatchHub, header: Header, has_leader: Callable[[], bool],
                 election_timeout_s: float, sm: Any = None) -> None:
        self.sm = sm
        """The state machine whose auth store decides who may watch what (None: no auth)."""
        self.hub = hub
        self.header = header
        self.has_leader = has_leader
        self.election_timeout_s = election_timeout_s

    async def Watch(self, request_iterator: AsyncIterator[rpc_pb2.WatchRequest],
                    context: Ctx) -> AsyncIterator[rpc_pb2.WatchResponse]:
        stream = self.hub.open_stream()
        tasks = [asyncio.create_task(self._recv(stream, request_iterator))]
        if _requires_leader(context):
            tasks.append(asyncio.create_task(self._monitor_leader(stream)))
        try:
            while True:
                out = await stream.queue.get()
                if out is None:
                    break
                yield out_to_pb(out, self.header)
        finally:
            stream.close()
            for t in tasks:
                t.cancel()
        if stream.error is not None:
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details(stream.error)

    async def _recv(self, stream: WatchStream,
                    requests: AsyncIterator[rpc_pb2.WatchRequest]) -> None:
        """Serve requests in order; when the client half-closes, keep sending (etcd)."""
        with contextlib.suppress(grpc.RpcError, asyncio.InvalidStateError):
            async for req in requests:
                kind = req.WhichOneof("request_union")
                if kind == "create_request":
                    create = req.create_request
                    denied = self._denied(create.key, create.range_end)
                    if denied is not None:
                        await stream.queue.put(denied)
                        continue
                    await stream.create(spec_from_pb(create))
                elif kind == "cancel_request":
                    await stream.cancel(req.cancel_request.watch_id)
                elif kind == "progress_request":
                    await stream.progress()

    def _denied(self, key: bytes, range_end: bytes) -> Out | None:
        """With auth on, a watch the caller may not read: etcd's answer is a created and
        canceled response for watch -1 whose reason is the status's full text. The range
        is checked as received, before the empty key becomes "\\0" (CVE-2026-73499)."""
        if self.sm is None:
            return None
        try:
            check_needs(self.sm, watch_footprint(key, range_end))
        except AuthError as exc:
            code, message = to_status(exc)
            reason = f"rpc error: code = {_GO_CODES.get(code, 'Unknown')} desc = {message}"
            return Out(-1, created=True, canceled=True, cancel_reason=reason)
        return None

    async def _monitor_leader(self, stream: WatchStream) -> None:
        """etcd ``monitorLeader``: cancel after NO_LEADER_CHECKS leaderless checks."""
        misses = 0
        while misses < NO_LEADER_CHECKS:
            await asyncio.sleep(self.election_timeout_s)
            misses = 0 if self.has_leader() else misses + 1
        stream.close(MSG_NO_LEADER)


def _requires_leader(context: Ctx) -> bool:
    for key, value in context.invocation_metadata() or ():
        if key == "hasleader" and value == "true":
            return True
    return False
