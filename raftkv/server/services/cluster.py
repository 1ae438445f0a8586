"""``etcdserverpb.Cluster``: MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote,
and :class:`Membership`, the runtime side of the member registry (applying it, keeping the
transport's peers in step, publishing this member's attributes)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from raftkv.errors import ConfigError, RaftKVError, UnavailableError
from raftkv.raft.types import ConfChange, ConfChangeType, ConfState
from raftkv.server.config import canonical_url, member_id, parse_url
from raftkv.server.members import (
    MemberRegistry,
    decode_context,
    encode_context,
    is_attribute_change,
)
from raftkv.server.node import NodeDriver
from raftkv.server.services.kv import Header
from raftkv.server.transport import GrpcTransport
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.status import to_status

log = logging.getLogger("raftkv.server.cluster")

PENDING = "a membership change is already pending"
"""The core's refusal while another conf change is uncommitted or unapplied."""
PENDING_RETRY_S = 3.0
"""How long a membership request waits for a pending (attribute) change to apply."""
Ctx = grpc.aio.ServicerContext[object, object]
T = TypeVar("T")
PROMOTE_MATCH_RATIO = 0.9
"""A learner is in sync when its match index is at least this share of the leader's."""


class EtcdError(Exception):
    """An error etcd answers with a fixed gRPC code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_FP = grpc.StatusCode.FAILED_PRECONDITION
MEMBER_NOT_FOUND = EtcdError(grpc.StatusCode.NOT_FOUND, "etcdserver: member not found")
ID_EXISTS = EtcdError(_FP, "etcdserver: member ID already exist")
PEER_URL_EXISTS = EtcdError(_FP, "etcdserver: Peer URLs already exists")
BAD_URLS = EtcdError(grpc.StatusCode.INVALID_ARGUMENT,
                     "etcdserver: given member URLs are invalid")
NOT_LEARNER = EtcdError(_FP, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = EtcdError(
    _FP, "etcdserver: can only promote a learner member which is in sync with leader")
TOO_MANY_LEARNERS = EtcdError(_FP, "etcdserver: too many learner members in cluster")
NO_LEADER = EtcdError(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")


async def answer(context: Ctx, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call``; turn an error into etcd's status and message."""
    try:
        return await call()
    except EtcdError as exc:
        await context.abort(exc.code, exc.message)
        raise  # unreachable: abort raises
    except RaftKVError as exc:
        code, message = to_status(exc)
        await context.abort(code, message)
        raise


class Membership:
    """Applies the member registry (from the driver's apply path), keeps the transport's
    peers in step (on the event loop) and publishes this member's attributes."""

    def __init__(self, registry: MemberRegistry, driver: NodeDriver, transport: GrpcTransport,
                 *, member_id: int, name: str, client_urls: tuple[str, ...],
                 on_removed: Callable[[], None]) -> None:
        self.registry = registry
        self.driver = driver
        self.transport = transport
        self.member_id = member_id
        self.name = name
        self.client_urls = client_urls
        self.on_removed = on_removed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        """Hook into the driver's apply path; call on the event loop before it runs."""
        self._loop = asyncio.get_running_loop()
        self.driver.is_attribute_change = is_attribute_change
        self.driver.on_conf_change.append(self._on_apply)
        self.driver.snapshot_extra = (self.registry.dump, self.registry.load)
        self.driver.on_snapshot_installed.append(self._on_snapshot)

    def _on_snapshot(self, index: int) -> None:
        """A snapshot replaced the registry: bring the transport's peers in line with it."""
        for info in self.registry.all():
            if info.id != self.member_id and info.peer_urls:
                self.transport.add_peer(info.id, parse_url(info.peer_urls[0]).url)

    def conf_state(self) -> ConfState:
        return self.driver.raw.raft.conf_state()

    def _on_apply(self, index: int, cc: ConfChange, cs: ConfState) -> None:
        if not self.registry.apply(index, cc) or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._after_apply, cc)

    def _after_apply(self, cc: ConfChange) -> None:
        nid = cc.node_id
        if cc.type is ConfChangeType.REMOVE_NODE:
            self.transport.remove_peer(nid)
            if nid == self.member_id and self._loop is not None:
                log.warning("this member (%x) was removed from the cluster; stopping", nid)
                self._loop.call_later(1.0, self.on_removed)
            return
        info = self.registry.get(nid)
        if info is not None and info.peer_urls:
            self.transport.add_peer(nid, parse_url(info.peer_urls[0]).url)
        if decode_context(cc).get("op") == "add" and self.driver.is_leader:
            task = asyncio.create_task(self._share_registry())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _share_registry(self) -> None:
        """After an add: put every member's attributes in the log, for the new member
        (it starts from a snapshot, which does not carry the registry)."""
        members = [m.to_json() for m in self.registry.all()]
        cc = ConfChange(ConfChangeType.ADD_LEARNER, self.member_id,
                        encode_context("registry", members=members))
        for _ in range(20):
            try:
                await self.propose(cc, timeout_s=2.0)
                return
            except (RaftKVError, TimeoutError) as exc:
                log.debug("sharing the member registry failed (will retry): %s", exc)
                await asyncio.sleep(0.3)

    async def propose(self, cc: ConfChange, timeout_s: float | None = None) -> ConfState:
        """Propose ``cc``. Members publish their attributes (and the leader shares the
        registry after an add) as conf-change entries, which etcd does not; Raft allows one
        pending change at a time, so a refusal because one of those is pending is retried
        for up to :data:`PENDING_RETRY_S` instead of failing the operator's request."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + PENDING_RETRY_S
        while True:
            try:
                if timeout_s is None:
                    return await self.driver.propose_conf_change(cc)
                return await asyncio.wait_for(self.driver.propose_conf_change(cc), timeout_s)
            except UnavailableError as exc:
                if PENDING not in str(exc) or loop.time() >= give_up:
                    raise
            await asyncio.sleep(0.05)

    def published(self) -> bool:
        info = self.registry.get(self.member_id)
        return info is not None and info.name == self.name and \
            info.client_urls == self.client_urls

    async def publish(self) -> None:
        """Propose this member's name and client URLs until the registry has them (etcd's
        publish); conf changes are one at a time, so members retry with jitter."""
        rng = random.Random()
        ctx = encode_context("attrs", name=self.name, clientURLs=list(self.client_urls))
        while not self.published():
            if self.registry.get(self.member_id) is None:
                return  # removed from the cluster
            try:
                await self.propose(ConfChange(ConfChangeType.ADD_LEARNER, self.member_id, ctx),
                                   timeout_s=2.0)
            except (RaftKVError, TimeoutError) as exc:
                log.debug("publish of member attributes failed (will retry): %s", exc)
                await asyncio.sleep(0.2 + rng.random())
        log.info("published name %s and client URLs %s", self.name, ",".join(self.client_urls))


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    def __init__(self, membership: Membership, header: Header, cluster_token: str,
                 dial: Callable[[str], grpc.aio.Channel] | None = None) -> None:
        self.m = membership
        self.header = header
        self.token = cluster_token
        self.dial = dial or (lambda url: grpc.aio.insecure_channel(url.split("://")[-1]))

    def _members(self) -> list[rpc_pb2.Member]:
        return [rpc_pb2.Member(ID=info.id, name=info.name, peerURLs=info.peer_urls,
                               clientURLs=info.client_urls, isLearner=learner)
                for info, learner in self.m.registry.members(self.m.conf_state())]

    def _urls(self, urls: list[str], owner: int = 0) -> list[str]:
        try:
            canon = [canonical_url(u) for u in urls]
        except ConfigError:
            raise BAD_URLS from None
        if not canon:
            raise BAD_URLS
        cs = self.m.conf_state()
        for u in canon:
            if self.m.registry.owner_of_peer_url(u, cs) not in (None, owner):
                raise PEER_URL_EXISTS
        return canon

    def _known(self, nid: int) -> ConfState:
        cs = self.m.conf_state()
        if not cs.contains(nid):
            raise MEMBER_NOT_FOUND
        return cs

    async def MemberList(self, request: rpc_pb2.MemberListRequest,
                         context: Ctx) -> rpc_pb2.MemberListResponse:
        return rpc_pb2.MemberListResponse(header=self.header.without_revision(),
                                          members=self._members())

    async def MemberAdd(self, request: rpc_pb2.MemberAddRequest,
                        context: Ctx) -> rpc_pb2.MemberAddResponse:
        async def run() -> rpc_pb2.MemberAddResponse:
            urls = self._urls(list(request.peerURLs))
            try:
                nid = member_id("", urls, self.token)
            except ConfigError:
                raise BAD_URLS from None
            cs = self.m.conf_state()
            if cs.contains(nid):
                raise ID_EXISTS
            if request.isLearner and cs.learners:
                raise TOO_MANY_LEARNERS
            kind = ConfChangeType.ADD_LEARNER if request.isLearner else ConfChangeType.ADD_NODE
            await self.m.propose(ConfChange(kind, nid, encode_context("add", peerURLs=urls)))
            member = rpc_pb2.Member(ID=nid, peerURLs=urls, isLearner=request.isLearner)
            return rpc_pb2.MemberAddResponse(header=self.header.without_revision(), member=member,
                                             members=self._members())
        return await answer(context, run)

    async def MemberRemove(self, request: rpc_pb2.MemberRemoveRequest,
                           context: Ctx) -> rpc_pb2.MemberRemoveResponse:
        async def run() -> rpc_pb2.MemberRemoveResponse:
            self._known(request.ID)
            await self.m.propose(ConfChange(ConfChangeType.REMOVE_NODE, request.ID,
                                            encode_context("remove")))
            return rpc_pb2.MemberRemoveResponse(header=self.header.without_revision(),
                                                members=self._members())
        return await answer(context, run)

    async def MemberUpdate(self, request: rpc_pb2.MemberUpdateRequest,
                           context: Ctx) -> rpc_pb2.MemberUpdateResponse:
        async def run() -> rpc_pb2.MemberUpdateResponse:
            self._known(request.ID)
            urls = self._urls(list(request.peerURLs), owner=request.ID)
            await self.m.propose(ConfChange(ConfChangeType.ADD_LEARNER, request.ID,
                                            encode_context("peers", peerURLs=urls)))
            return rpc_pb2.MemberUpdateResponse(header=self.header.without_revision(),
                                                members=self._members())
        return await answer(context, run)

    async def MemberPromote(self, request: rpc_pb2.MemberPromoteRequest,
                            context: Ctx) -> rpc_pb2.MemberPromoteResponse:
        async def run() -> rpc_pb2.MemberPromoteResponse:
            cs = self._known(request.ID)
            if request.ID not in cs.learners:
                raise NOT_LEARNER
            if not self.m.driver.is_leader:
                return await self._forward_promote(request)
            self._check_in_sync(request.ID)
            await self.m.propose(ConfChange(ConfChangeType.ADD_NODE, request.ID,
                                            encode_context("promote")))
            return rpc_pb2.MemberPromoteResponse(header=self.header.without_revision(),
                                                 members=self._members())
        return await answer(context, run)

    def _check_in_sync(self, learner: int) -> None:
        """etcd's rule: the learner's match index is >= 90% of the leader's."""
        status = self.m.driver.raw.status()
        me, it = status.progress.get(status.id), status.progress.get(learner)
        if me is None or it is None or it.match < me.match * PROMOTE_MATCH_RATIO:
            raise LEARNER_NOT_READY

    async def _forward_promote(self, request: rpc_pb2.MemberPromoteRequest,
                               ) -> rpc_pb2.MemberPromoteResponse:
        """Promotion needs the leader's view of the learner's progress: ask the leader."""
        lead = self.m.driver.lead
        info = self.m.registry.get(lead) if lead else None
        if info is None or not info.client_urls:
            raise NO_LEADER
        async with self.dial(parse_url(info.client_urls[0]).url) as channel:
            stub = rpc_pb2_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call]
            try:
                resp: rpc_pb2.MemberPromoteResponse = await stub.MemberPromote(
                    request, timeout=10.0)
            except grpc.aio.AioRpcError as exc:
                raise EtcdError(exc.code(), exc.details() or "") from None
        return resp
