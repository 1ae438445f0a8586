"""The peer transport: one long-lived gRPC client stream per peer carrying batches of Raft
messages, snapshots streamed in chunks on their own call, and the server side that feeds
what arrives into the node driver. A snapshot recorded by the log carries no data (only its
index): the data is produced by the driver when a snapshot is sent.

Each peer has a bounded queue; a sender task drains everything queued into one
``MessageBatch`` per write, so a busy leader sends few, large writes. Raft tolerates lost
messages, so when a peer is down or its queue is full, messages are dropped and the core is
told the peer is unreachable (it falls back to probing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

import grpc

from raftkv.raft.types import Message, MessageType
from raftkv.wire import raft_convert as rc
from raftkv.wire.pb.raftpb import raft_pb2, raft_pb2_grpc

log = logging.getLogger("raftkv.server.transport")

MAX_QUEUE = 8192
MAX_BATCH = 1024
SNAPSHOT_CHUNK = 1 << 20
Dial = Callable[[str], grpc.aio.Channel]
"""Opens a channel to a peer URL (``http://`` or ``https://``, or a bare ``host:port``)."""

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


class Peer:
    """The sending side towards one peer."""

    def __init__(self, transport: GrpcTransport, member_id: int, address: str) -> None:
        self.transport = transport
        self.member_id = member_id
        self.address = address
        self.queue: list[Message] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def enqueue(self, m: Message) -> None:
        if len(self.queue) >= MAX_QUEUE:
            self.queue.clear()
            self.transport.report_unreachable(self.member_id)
        self.queue.append(m)
        self.ready.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            try:
                async with self.transport.dial(self.address) as channel:
                    await self._stream(raft_pb2_grpc.RaftStub(channel))  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("stream to %x (%s) failed: %s", self.member_id, self.address, exc)
            self.queue.clear()
            self.transport.report_unreachable(self.member_id)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _stream(self, stub: raft_pb2_grpc.RaftStub) -> None:
        t = self.transport
        call = stub.Stream(metadata=rc.peer_metadata(t.cluster_token, t.member_id,
                                                     self.member_id))
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.queue:
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                await call.write(rc.batch_to_pb(batch))


class GrpcTransport:
    """Sends the driver's messages to peers; see the module docstring."""

    def __init__(self, member_id: int, cluster_token: str, peers: dict[int, str],
                 dial: Dial | None = None) -> None:
        self.member_id = member_id
        self.cluster_token = cluster_token
        self.dial: Dial = dial or plain_dial
        self.peers = {mid: Peer(self, mid, addr) for mid, addr in peers.items()
                      if mid != member_id}
        self.on_unreachable: Callable[[int], None] = lambda _: None
        self.on_snapshot_status: Callable[[int, bool], None] = lambda _, __: None
        self.snapshot_data: Callable[[], Awaitable[bytes]] | None = None
        """Produces the data of a snapshot recorded without any (the driver's
        ``snapshot_data``): the log's snapshots hold only an index."""
        self._snapshot_tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        for peer in self.peers.values():
            peer.task = asyncio.create_task(peer.run(), name=f"raftkv-peer-{peer.member_id:x}")

    async def stop(self) -> None:
        tasks = [p.task for p in self.peers.values() if p.task is not None]
        tasks += list(self._snapshot_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def report_unreachable(self, member_id: int) -> None:
        self.on_unreachable(member_id)

    def add_peer(self, member_id: int, address: str) -> None:
        """Start sending to ``member_id`` at ``address`` (a new member, or a new address).
        Call on the event loop, after :meth:`start`."""
        if member_id == self.member_id:
            return
        old = self.peers.get(member_id)
        if old is not None:
            if old.address == address:
                return
            self.remove_peer(member_id)
        peer = self.peers[member_id] = Peer(self, member_id, address)
        peer.task = asyncio.create_task(peer.run(), name=f"raftkv-peer-{member_id:x}")

    def remove_peer(self, member_id: int) -> None:
        """Stop sending to ``member_id`` (a removed member). Call on the event loop."""
        peer = self.peers.pop(member_id, None)
        if peer is not None and peer.task is not None:
            peer.task.cancel()

    def send(self, messages: Sequence[Message]) -> None:
        for m in messages:
            peer = self.peers.get(m.to)
            if peer is None:
                continue
            if m.type is MessageType.SNAP:
                task = asyncio.create_task(self._send_snapshot(peer, m))
                self._snapshot_tasks.add(task)
                task.add_done_callback(self._snapshot_tasks.discard)
            else:
                peer.enqueue(m)

    async def _send_snapshot(self, peer: Peer, m: Message) -> None:
        ok = False
        try:
            snap = m.snapshot
            if snap is not None and not snap.data and self.snapshot_data is not None:
                m = replace(m, snapshot=replace(snap, data=await self.snapshot_data()))
            async with self.dial(peer.address) as ch:
                stub = raft_pb2_grpc.RaftStub(ch)  # type: ignore[no-untyped-call]
                chunks = rc.snapshot_message_to_chunks(m, SNAPSHOT_CHUNK,
                                                       cluster_token=self.cluster_token)
                md = rc.peer_metadata(self.cluster_token, self.member_id, peer.member_id)
                await stub.SendSnapshot(_aiter(chunks), metadata=md, timeout=300)
                ok = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("snapshot to %x failed: %s", peer.member_id, exc)
        self.on_snapshot_status(peer.member_id, ok)


def plain_dial(url: str) -> grpc.aio.Channel:
    """A plaintext channel to a peer URL (a member started without peer TLS)."""
    address = url.split("://", 1)[-1]
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def tls_dial(credentials: Callable[[], grpc.ChannelCredentials]) -> Dial:
    """Dials ``https://`` peer URLs with ``credentials()`` (read at every dial, so a rotated
    certificate is used from the next connection on), others in plaintext."""
    def dial(url: str) -> grpc.aio.Channel:
        scheme, _, address = url.rpartition("://")
        if scheme != "https":
            return plain_dial(url)
        return grpc.aio.secure_channel(address, credentials(), options=CHANNEL_OPTIONS)
    return dial


async def ask_cluster_id(member_id: int, cluster_token: str, peers: dict[int, str],
                         timeout_s: float, dial: Dial = plain_dial) -> int:
    """The cluster id of a running cluster, asked of its members (for a member joining with
    ``--initial-cluster-state existing``, as etcd fetches it from its peers).

    Raises:
        TimeoutError: no member answered within ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        for peer_id, address in peers.items():
            if peer_id == member_id:
                continue
            try:
                async with dial(address) as channel:
                    stub = raft_pb2_grpc.RaftStub(channel)  # type: ignore[no-untyped-call]
                    reply = await stub.Hello(raft_pb2.HelloRequest(
                        cluster_token=cluster_token, frm=member_id, to=peer_id,
                        protocol_version=rc.PROTOCOL_VERSION), timeout=1.0)
            except grpc.aio.AioRpcError:
                continue
            if reply.accepted and reply.cluster_id:
                return int(reply.cluster_id)
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no member of the existing cluster answered within {timeout_s:g}s")


async def _aiter(items: object) -> AsyncIterator[raft_pb2.SnapshotChunk]:
    for item in items:  # type: ignore[attr-defined]
        yield item
        await asyncio.sleep(0)


class RaftService(raft_pb2_grpc.RaftServicer):
    """The receiving side: steps what peers send into the driver."""

    def __init__(self, member_id: int, cluster_token: str,
                 deliver: Callable[[Sequence[Message]], None], cluster_id: int = 0) -> None:
        self.member_id = member_id
        self.cluster_token = cluster_token
        self.deliver = deliver
        self.cluster_id = cluster_id

    async def _check(self, context: grpc.aio.ServicerContext[object, object]) -> None:
        try:
            header = rc.peer_header_from_metadata(context.invocation_metadata() or ())
        except rc.WireFormatError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        if header.cluster_token != self.cluster_token or header.to != self.member_id:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"member {self.member_id:x} of cluster "
                                f"{self.cluster_token!r} refuses a stream meant for member "
                                f"{header.to:x} of cluster {header.cluster_token!r}")

    async def Stream(self, request_iterator: AsyncIterator[raft_pb2.MessageBatch],
                     context: grpc.aio.ServicerContext[object, object]) -> raft_pb2.StreamAck:
        await self._check(context)
        batches = messages = 0
        async for batch in request_iterator:
            try:
                msgs = rc.batch_from_pb(batch)
            except rc.WireFormatError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                raise
            batches += 1
            messages += len(msgs)
            self.deliver(msgs)
        return raft_pb2.StreamAck(batches=batches, messages=messages)

    async def SendSnapshot(self, request_iterator: AsyncIterator[raft_pb2.SnapshotChunk],
                           context: grpc.aio.ServicerContext[object, object],
                           ) -> raft_pb2.SnapshotAck:
        await self._check(context)
        assembler = rc.SnapshotAssembler()
        try:
            async for chunk in request_iterator:
                assembler.add(chunk)
            message = assembler.message()
        except rc.WireFormatError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        self.deliver([message])
        return raft_pb2.SnapshotAck(received_bytes=assembler.received_bytes)

    async def Hello(self, request: raft_pb2.HelloRequest,
                    context: grpc.aio.ServicerContext[object, object],
                    ) -> raft_pb2.HelloResponse:
        return rc.check_hello(request, cluster_token=self.cluster_token,
                              member_id=self.member_id, cluster_id=self.cluster_id)
