"""``v3electionpb.Election``: Campaign, Proclaim, Leader, Observe, Resign.

etcd's ``clientv3/concurrency`` election (etcd-api.md §7), composed from the lock recipe of
:mod:`raftkv.server.services.lock`: a candidate's key is ``name/<hex lease>`` holding its
value; the leader is the key of the prefix with the lowest create revision, and a candidate
waits for its immediate predecessor only. ``LeaderKey.rev`` (the key's create revision) is
the leader's fencing token: Proclaim and Resign are txns guarded by it.

Errors are etcd's plain Go errors, sent as gRPC ``UNKNOWN`` with their exact text:
``election: not leader``, ``election: no leader``, ``"leader" field must be provided``;
a candidate whose key vanished while waiting (lease expired or revoked) gets
``mutex: session is expired`` (see the lock module).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from raftkv.errors import AuthError, RaftKVError
from raftkv.server.auth import check_needs
from raftkv.server.services.kv import Ctx, Header
from raftkv.server.services.lock import (
    RecipeError,
    Recipes,
    Subscription,
    created_is,
    first_created,
    prefix_end,
    range_kvs,
    recipe_guarded,
    waiter_key,
)
from raftkv.state.authz import election_footprint, watch_footprint
from raftkv.state.commands import DeleteRange, EventType, KeyValue, Put, Range, Txn
from raftkv.wire import etcd_convert as ec
from raftkv.wire.pb.v3electionpb import v3election_pb2 as epb
from raftkv.wire.pb.v3electionpb import v3election_pb2_grpc
from raftkv.wire.status import to_status

NOT_LEADER = "election: not leader"
NO_LEADER = "election: no leader"
MISSING_LEADER_KEY = '"leader" field must be provided'


class ElectionService(v3election_pb2_grpc.ElectionServicer):
    """``v3electionpb.Election`` (see the module docstring)."""

    def __init__(self, recipes: Recipes, header: Header) -> None:
        self.r = recipes
        self.header = header

    async def Campaign(self, request: epb.CampaignRequest,
                       context: Ctx) -> epb.CampaignResponse:
        async def run() -> epb.CampaignResponse:
            check_needs(self.r.driver.sm, election_footprint(request.name))
            lease = await self.r.session_lease(request.lease)
            name, value = request.name, request.value
            key = waiter_key(name, lease)
            res = await self.r.txn(Txn((created_is(key, 0),), (Put(key, value, lease),),
                                       (Range(key),)))
            my_rev = res.revision
            if not res.succeeded:
                mine = range_kvs(res, 0)[0]
                my_rev = mine.create_revision
                if mine.value != value and not await self._proclaim(key, my_rev, lease, value):
                    raise RecipeError(NOT_LEADER)
            await self.r.wait_turn(name + b"/", key, my_rev)
            leader = epb.LeaderKey(name=name, key=key, rev=my_rev, lease=lease)
            return epb.CampaignResponse(header=self.header(res.revision), leader=leader)
        return await recipe_guarded(context, run)

    async def _proclaim(self, key: bytes, rev: int, lease: int, value: bytes) -> int:
        """Put ``value`` if ``key`` is still the incarnation created at ``rev``; return the
        txn's revision, or 0 if it is not."""
        res = await self.r.txn(Txn((created_is(key, rev),), (Put(key, value, lease),)))
        return res.revision if res.succeeded else 0

    async def Proclaim(self, request: epb.ProclaimRequest,
                       context: Ctx) -> epb.ProclaimResponse:
        async def run() -> epb.ProclaimResponse:
            if not request.HasField("leader"):
                raise RecipeError(MISSING_LEADER_KEY)
            lk = request.leader
            revision = await self._proclaim(lk.key, lk.rev, lk.lease, request.value)
            if not revision:
                raise RecipeError(NOT_LEADER)
            return epb.ProclaimResponse(header=self.header(revision))
        return await recipe_guarded(context, run)

    async def Resign(self, request: epb.ResignRequest,
                     context: Ctx) -> epb.ResignResponse:
        async def run() -> epb.ResignResponse:
            if not request.HasField("leader"):
                raise RecipeError(MISSING_LEADER_KEY)
            lk = request.leader
            # As etcd: resigning a leadership already lost is not an error.
            res = await self.r.txn(Txn((created_is(lk.key, lk.rev),), (DeleteRange(lk.key),)))
            return epb.ResignResponse(header=self.header(res.revision))
        return await recipe_guarded(context, run)

    async def Leader(self, request: epb.LeaderRequest,
                     context: Ctx) -> epb.LeaderResponse:
        async def run() -> epb.LeaderResponse:
            await self.r.driver.read_barrier()
            check_needs(self.r.driver.sm, watch_footprint(request.name + b"/",
                                                          prefix_end(request.name + b"/")))
            rr = self.r.driver.sm.range(first_created(request.name + b"/"))
            if not rr.kvs:
                raise RecipeError(NO_LEADER)
            return epb.LeaderResponse(header=self.header(rr.revision),
                                      kv=ec.kv_to_pb(rr.kvs[0]))
        return await recipe_guarded(context, run)

    async def Observe(self, request: epb.LeaderRequest,
                      context: Ctx) -> AsyncIterator[epb.LeaderResponse]:
        prefix = request.name + b"/"
        end = prefix_end(prefix)
        try:
            check_needs(self.r.driver.sm, watch_footprint(prefix, end))
        except AuthError:
            return  # etcd: an observer without READ on the prefix gets an empty stream
        with self.r.hub.subscribe(lambda k: prefix <= k < end) as sub:
            try:
                async for kv in self._leaders(prefix, sub):
                    yield epb.LeaderResponse(header=self.header(kv.mod_revision),
                                             kv=ec.kv_to_pb(kv))
            except RaftKVError as exc:
                code, message = to_status(exc)
                await context.abort(code, message)

    async def _leaders(self, prefix: bytes, sub: Subscription) -> AsyncIterator[KeyValue]:
        """The leader's kv, then each of its proclamations until it is deleted; then the
        next leader, and so on (etcd's ``Election.observe``)."""
        while True:
            await self.r.driver.read_barrier()
            rr = self.r.driver.sm.range(first_created(prefix))
            seen = rr.revision
            if rr.kvs:
                leader = rr.kvs[0]
            else:
                ev = await sub.next_after(seen)
                while ev.type is not EventType.PUT:  # a delete would make us spin
                    ev = await sub.next_after(seen)
                leader = ev.kv
                seen = leader.mod_revision
            yield leader
            while True:
                ev = await sub.next_after(seen)
                if ev.kv.key != leader.key:
                    continue
                if ev.type is EventType.DELETE:
                    break
                yield ev.kv
