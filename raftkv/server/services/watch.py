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

import grpc

from raftkv.server.services.kv import Ctx, Header
from raftkv.server.watch_hub import Out, WatchHub, WatchSpec, WatchStream
from raftkv.wire.etcd_convert import kv_to_pb
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.mvccpb import kv_pb2

MSG_NO_LEADER = "etcdserver: no leader"
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
                 election_timeout_s: float) -> None:
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
                    await stream.create(spec_from_pb(req.create_request))
                elif kind == "cancel_request":
                    await stream.cancel(req.cancel_request.watch_id)
                elif kind == "progress_request":
                    await stream.progress()

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
