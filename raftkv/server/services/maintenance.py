"""``etcdserverpb.Maintenance``: Status, MoveLeader, Hash, HashKV, Snapshot, Alarm, Defragment,
and the NOSPACE quota watcher (the write handlers refuse adds while the alarm is up:
:func:`raftkv.server.services.kv.refuse_without_space`).

Snapshot stream format (what ``etcdctl snapshot save`` writes to its file): a raftkv snapshot
container ``MAGIC | data length (8 bytes, big endian) | state machine snapshot | zero
padding`` to a multiple of 512 bytes, then the 32-byte SHA-256 of everything before it, as
etcd's stream ends. :func:`unpack_snapshot` reads such a file back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from collections.abc import AsyncIterator, Callable

import grpc

from raftkv.raft.types import ConfChange, ConfChangeType, StateRole
from raftkv.server.auth import require_root
from raftkv.server.members import ALARM_ACTIVATE, encode_context
from raftkv.server.node import NodeDriver
from raftkv.server.services.cluster import EtcdError, Membership, answer
from raftkv.server.services.kv import NO_SPACE_MESSAGE, Header
from raftkv.state import schema
from raftkv.state.backend import Backend
from raftkv.state.revision import Revision
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

log = logging.getLogger("raftkv.server.maintenance")
Ctx = grpc.aio.ServicerContext[object, object]
ETCD_VERSION = "3.4.0"
"""The etcd API version we speak; etcdctl prints it in ``endpoint status``."""
SNAPSHOT_MAGIC = b"RAFTKVSNAP1\n"
SNAPSHOT_BLOCK = 512
SNAPSHOT_CHUNK = 32 * 1024
NOSPACE = rpc_pb2.NOSPACE
_FP = grpc.StatusCode.FAILED_PRECONDITION
NOT_LEADER = EtcdError(_FP, "etcdserver: not leader")
BAD_TRANSFEREE = EtcdError(_FP, "etcdserver: bad leader transferee")
TRANSFER_TIMEOUT = EtcdError(grpc.StatusCode.UNAVAILABLE,
                             "etcdserver: request timed out, leader transfer took too long")
NO_SPACE = EtcdError(grpc.StatusCode.RESOURCE_EXHAUSTED, NO_SPACE_MESSAGE)
COMPACTED = EtcdError(grpc.StatusCode.OUT_OF_RANGE,
                      "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = EtcdError(grpc.StatusCode.OUT_OF_RANGE,
                       "etcdserver: mvcc: required revision is a future revision")


def pack_snapshot(data: bytes) -> bytes:
    """The snapshot file body: container padded to a multiple of 512 (no digest)."""
    body = SNAPSHOT_MAGIC + len(data).to_bytes(8, "big") + data
    return body + b"\0" * (-len(body) % SNAPSHOT_BLOCK)


def unpack_snapshot(blob: bytes) -> bytes:
    """The state machine snapshot inside a file written by ``snapshot save``.

    Raises:
        ValueError: not a raftkv snapshot file, or its SHA-256 does not match.
    """
    body, digest = blob[:-32], blob[-32:]
    if not body.startswith(SNAPSHOT_MAGIC) or hashlib.sha256(body).digest() != digest:
        raise ValueError("not a raftkv snapshot file, or its SHA-256 does not match")
    start = len(SNAPSHOT_MAGIC) + 8
    size = int.from_bytes(body[len(SNAPSHOT_MAGIC):start], "big")
    if start + size > len(body):
        raise ValueError("raftkv snapshot file is truncated")
    return body[start:start + size]


def hash_kv(backend: Backend, revision: int) -> int:
    """CRC-32 over every MVCC record up to ``revision`` (compacted ones are gone on every
    member alike), so equal on members with the same history."""
    crc = 0
    end = schema.KV_PREFIX + Revision(revision + 1, 0).to_bytes()
    for key, value in backend.scan(schema.KV_PREFIX, end):
        crc = zlib.crc32(value, zlib.crc32(key, crc))
    return crc


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, header: Header, db_size: Callable[[], int],
                 membership: Membership | None = None, backend: Backend | None = None,
                 defragment: Callable[[], None] | None = None) -> None:
        self.header = header
        self.db_size = db_size
        self.membership = membership
        self.backend = backend
        self.defragment = defragment

    async def Status(self, request: rpc_pb2.StatusRequest,
                     context: Ctx) -> rpc_pb2.StatusResponse:
        d = self.header.driver
        raft = d.raw.raft
        size = self.db_size()
        errors = [] if raft.lead else ["etcdserver: no leader"]
        if self.membership is not None:
            errors += [f"memberID:{m} alarm:{rpc_pb2.AlarmType.Name(a)} "
                       for m, a in self.membership.registry.alarms()]
        return rpc_pb2.StatusResponse(
            header=self.header(), version=ETCD_VERSION, dbSize=size, dbSizeInUse=size,
            leader=raft.lead, raftIndex=raft.log.committed, raftTerm=raft.term,
            raftAppliedIndex=d.sm.applied_index, errors=errors,
            isLearner=raft.id in raft.learners and raft.role is not StateRole.LEADER,
            raftkv_peers=_peer_status(d))

    async def MoveLeader(self, request: rpc_pb2.MoveLeaderRequest,
                         context: Ctx) -> rpc_pb2.MoveLeaderResponse:
        async def run() -> rpc_pb2.MoveLeaderResponse:
            d = self.header.driver
            if not d.is_leader:
                raise NOT_LEADER
            target = request.targetID
            if target not in d.raw.raft.conf_state().voters:
                raise BAD_TRANSFEREE
            loop = asyncio.get_running_loop()
            deadline = loop.time() + d.cfg.request_timeout_s
            if target != d.raw.raft.id:
                d.transfer_leadership(target)
            while d.lead != target:
                if loop.time() > deadline:
                    raise TRANSFER_TIMEOUT
                await asyncio.sleep(0.02)
            return rpc_pb2.MoveLeaderResponse(header=self.header())
        return await answer(context, run)

    async def Hash(self, request: rpc_pb2.HashRequest,
                   context: Ctx) -> rpc_pb2.HashResponse:
        sm = self.header.driver.sm
        data = await asyncio.to_thread(sm.snapshot)
        return rpc_pb2.HashResponse(header=self.header(), hash=zlib.crc32(data))

    async def HashKV(self, request: rpc_pb2.HashKVRequest,
                     context: Ctx) -> rpc_pb2.HashKVResponse:
        async def run() -> rpc_pb2.HashKVResponse:
            sm = self.header.driver.sm
            current, compacted = sm.revision, sm.compact_revision
            rev = request.revision or current
            if rev > current:
                raise FUTURE_REV
            if 0 < rev < compacted:
                raise COMPACTED
            if self.backend is None:
                raise EtcdError(grpc.StatusCode.UNIMPLEMENTED, "HashKV is not available")
            crc = await asyncio.to_thread(hash_kv, self.backend, rev)
            return rpc_pb2.HashKVResponse(header=self.header(current), hash=crc,
                                          compact_revision=compacted)
        return await answer(context, run)

    async def Snapshot(self, request: rpc_pb2.SnapshotRequest,
                       context: Ctx) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        sm = self.header.driver.sm
        body = pack_snapshot(await asyncio.to_thread(sm.snapshot))
        header = self.header()
        for offset in range(0, len(body), SNAPSHOT_CHUNK):
            blob = body[offset:offset + SNAPSHOT_CHUNK]
            remaining = len(body) - offset - len(blob)
            yield rpc_pb2.SnapshotResponse(header=header, remaining_bytes=remaining,
                                           blob=blob)
        yield rpc_pb2.SnapshotResponse(header=header, remaining_bytes=0,
                                       blob=hashlib.sha256(body).digest())

    async def Alarm(self, request: rpc_pb2.AlarmRequest,
                    context: Ctx) -> rpc_pb2.AlarmResponse:
        async def run() -> rpc_pb2.AlarmResponse:
            m = self.membership
            if m is None:
                return rpc_pb2.AlarmResponse(header=self.header())
            if request.action != rpc_pb2.AlarmRequest.GET:
                require_root(self.header.driver.sm)  # etcd 3.5.29+: changing alarms is root's
            before = m.registry.alarms()
            if request.action == rpc_pb2.AlarmRequest.GET:
                hits = [a for a in before if request.alarm in (0, a[1])]
            elif request.action == rpc_pb2.AlarmRequest.ACTIVATE:
                hits = [(request.memberID, int(request.alarm))]
            else:
                hits = [a for a in before if request.memberID in (0, a[0])
                        and request.alarm in (0, a[1])]
            if request.action != rpc_pb2.AlarmRequest.GET:
                ctx = encode_context("alarm", action=int(request.action),
                                     member=request.memberID, alarm=int(request.alarm))
                await m.propose(ConfChange(ConfChangeType.ADD_LEARNER, m.member_id, ctx))
            alarms = [rpc_pb2.AlarmMember(memberID=mid, alarm=a) for mid, a in hits]  # type: ignore[arg-type]
            return rpc_pb2.AlarmResponse(header=self.header(), alarms=alarms)
        return await answer(context, run)

    async def Defragment(self, request: rpc_pb2.DefragmentRequest,
                         context: Ctx) -> rpc_pb2.DefragmentResponse:
        if self.defragment is not None:
            await asyncio.to_thread(self.defragment)
        return rpc_pb2.DefragmentResponse(header=self.header())


async def watch_quota(membership: Membership, db_size: Callable[[], int], quota: int,
                      interval_s: float = 1.0) -> None:
    """Raise NOSPACE for this member (a replicated alarm) while its db exceeds ``quota``."""
    while True:
        await asyncio.sleep(interval_s)
        mine = (membership.member_id, NOSPACE)
        if db_size() <= quota or mine in membership.registry.alarms():
            continue
        log.warning("database size %d exceeds the quota %d: raising NOSPACE", db_size(), quota)
        ctx = encode_context("alarm", action=ALARM_ACTIVATE, member=membership.member_id,
                             alarm=NOSPACE)
        try:
            await membership.propose(ConfChange(ConfChangeType.ADD_LEARNER,
                                                membership.member_id, ctx), timeout_s=5.0)
        except Exception as exc:  # retried on the next round
            log.debug("raising NOSPACE failed: %s", exc)


def _peer_status(d: NodeDriver) -> list[rpc_pb2.RaftkvPeerStatus]:
    """raftkv's extension of StatusResponse: last contact with (and, on the leader, the
    match index of) every other member."""
    raft = d.raw.raft
    now = asyncio.get_running_loop().time()
    leader = raft.role is StateRole.LEADER
    out = []
    for mid in sorted(raft.prs):
        if mid == raft.id:
            continue
        heard = d.last_heard.get(mid)
        pr = raft.prs[mid]
        out.append(rpc_pb2.RaftkvPeerStatus(
            ID=mid, last_contact_ms=-1 if heard is None else int((now - heard) * 1000),
            match_index=pr.match if leader else 0))
    return out
