"""Cluster and maintenance calls of :class:`raftkv.client.Client` (a mixin, to keep the
client module about the data path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from raftkv.client.types import Header, Member, Status
from raftkv.wire.pb.etcdserverpb import rpc_pb2

_ANY: Any = None


class AdminMixin:
    """Membership and maintenance (``Cluster`` and ``Maintenance`` services)."""

    async def _call(self, service: str, method: str, request: Any, *, write: bool = False,
                    timeout: float | None = _ANY, blocking: bool = False) -> Any:
        raise NotImplementedError

    async def _open_stream(self, service: str, method: str,
                           requests: Any) -> tuple[Any, int, int]:
        raise NotImplementedError

    def _map(self, exc: grpc.RpcError, generation: int) -> Any:
        raise NotImplementedError

    async def _reauthenticate(self, err: Any, generation: int) -> bool:
        raise NotImplementedError

    async def status(self) -> Status:
        """``Maintenance.Status`` of the member the client talks to."""
        return Status.from_pb(await self._call("maintenance", "Status",
                                               rpc_pb2.StatusRequest()))

    async def members(self) -> tuple[Member, ...]:
        """The cluster's members (learners included)."""
        r = await self._call("cluster", "MemberList", rpc_pb2.MemberListRequest())
        return tuple(Member.from_pb(m) for m in r.members)

    async def member_add(self, peer_urls: Sequence[str], *,
                         learner: bool = False) -> tuple[Member, tuple[Member, ...]]:
        """Add a member; returns it and the new member list. Not retried (not idempotent)."""
        req = rpc_pb2.MemberAddRequest(peerURLs=list(peer_urls), isLearner=learner)
        r = await self._call("cluster", "MemberAdd", req, write=True)
        return Member.from_pb(r.member), tuple(Member.from_pb(m) for m in r.members)

    async def member_remove(self, member_id: int) -> tuple[Member, ...]:
        r = await self._call("cluster", "MemberRemove",
                             rpc_pb2.MemberRemoveRequest(ID=member_id), write=True)
        return tuple(Member.from_pb(m) for m in r.members)

    async def member_update(self, member_id: int, peer_urls: Sequence[str]) -> tuple[Member, ...]:
        req = rpc_pb2.MemberUpdateRequest(ID=member_id, peerURLs=list(peer_urls))
        r = await self._call("cluster", "MemberUpdate", req, write=True)
        return tuple(Member.from_pb(m) for m in r.members)

    async def member_promote(self, member_id: int) -> tuple[Member, ...]:
        r = await self._call("cluster", "MemberPromote",
                             rpc_pb2.MemberPromoteRequest(ID=member_id), write=True)
        return tuple(Member.from_pb(m) for m in r.members)

    async def move_leader(self, target_id: int) -> Header:
        """Hand leadership to ``target_id`` (the client must talk to the leader)."""
        r = await self._call("maintenance", "MoveLeader",
                             rpc_pb2.MoveLeaderRequest(targetID=target_id), write=True)
        return Header.from_pb(r.header)

    async def defragment(self) -> Header:
        r = await self._call("maintenance", "Defragment", rpc_pb2.DefragmentRequest())
        return Header.from_pb(r.header)

    async def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """``(hash, compact_revision, hash_revision)`` of the member's key space."""
        r = await self._call("maintenance", "HashKV", rpc_pb2.HashKVRequest(revision=revision))
        return r.hash, r.compact_revision, r.hash_revision

    async def alarms(self) -> tuple[tuple[int, str], ...]:
        """Active alarms as ``(member id, "NOSPACE" | "CORRUPT")``."""
        req = rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.GET)
        r = await self._call("maintenance", "Alarm", req)
        return tuple((a.memberID, rpc_pb2.AlarmType.Name(a.alarm)) for a in r.alarms)

    async def disarm(self, member_id: int = 0, alarm: str = "NONE") -> None:
        """Deactivate an alarm (``member_id`` 0 and ``"NONE"``: every alarm)."""
        req = rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.DEACTIVATE,
                                   memberID=member_id, alarm=alarm)
        await self._call("maintenance", "Alarm", req, write=True)

    async def snapshot(self) -> AsyncIterator[bytes]:
        """Stream the member's backend snapshot (etcd's format), chunk by chunk."""
        for first_try in (True, False):
            call, generation, auth_generation = await self._open_stream(
                "maintenance", "Snapshot", rpc_pb2.SnapshotRequest())
            started = False
            try:
                async for chunk in call:
                    started = True
                    yield chunk.blob
                return
            except grpc.RpcError as exc:
                err = self._map(exc, generation)
                if started or not first_try or \
                        not await self._reauthenticate(err, auth_generation):
                    raise err from None
            finally:
                call.cancel()
