"""``etcdserverpb.Lease``: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive,
LeaseLeases, with etcd 3.4's semantics (see ``etcd-api.md`` §5).

Every change goes through Raft; time enters only as the ``now_ms`` field of the proposed
command, read from :func:`~raftkv.server.lease_keeper.clock_ms`. Expiry is not here: the
leader's :class:`~raftkv.server.lease_keeper.LeaseKeeper` proposes the revocations.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Callable

import grpc

from raftkv.errors import LeaseNotFoundError, RaftKVError
from raftkv.server.auth import check_needs
from raftkv.server.lease_keeper import clock_ms
from raftkv.server.node import NodeDriver, RequestTimeoutError
from raftkv.server.services.kv import Header, guarded, refuse_without_space, request_id
from raftkv.state.authz import Perm, lease_keys_footprint
from raftkv.state.commands import (
    Command,
    ErrorResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRenew,
    LeaseRenewResult,
    LeaseRevoke,
    LeaseRevokeResult,
    Response,
)
from raftkv.state.errors import LeaseExistsError, LeaseTTLTooLargeError
from raftkv.state.leases import MAX_LEASE_TTL_S
from raftkv.state.machine import error_to_exception
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.status import to_status

Ctx = grpc.aio.ServicerContext[object, object]

_ID_ATTEMPTS = 5


def min_lease_ttl_s(election_ticks: int, tick_interval_s: float) -> int:
    """etcd's ``minTTL``: ``ceil(1.5 * election timeout)`` in whole seconds."""
    return max(1, math.ceil(1.5 * election_ticks * tick_interval_s - 1e-9))


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, driver: NodeDriver, header: Header, *,
                 clock: Callable[[], int] = clock_ms,
                 rng: random.Random | None = None,
                 no_space: Callable[[], bool] = lambda: False) -> None:
        self.driver = driver
        self.header = header
        self.no_space = no_space
        self.clock = clock
        self.rng = rng if rng is not None else random.SystemRandom()

    @property
    def min_ttl_s(self) -> int:
        d = self.driver
        return min_lease_ttl_s(d.raw.raft.cfg.election_ticks, d.cfg.tick_interval_s)

    async def _propose(self, op: Command, rid: tuple[int, int, int] | None = None) -> Response:
        result = await self.driver.propose(op, rid) if rid else await self.driver.propose(op)
        if isinstance(result, ErrorResult):
            raise error_to_exception(result)
        return result

    def _new_id(self) -> int:
        """A random positive 63-bit id not in use here (etcd masks its request id)."""
        while True:
            lease_id = self.rng.getrandbits(63)
            if lease_id != 0 and self.driver.sm.lease_status(lease_id, 0) is None:
                return lease_id

    async def _grant(self, request: rpc_pb2.LeaseGrantRequest,
                     rid: tuple[int, int, int] | None = None) -> LeaseGrantResult:
        if request.TTL > MAX_LEASE_TTL_S:
            raise LeaseTTLTooLargeError()
        ttl = max(request.TTL, self.min_ttl_s)
        if request.ID != 0:
            result = await self._propose(LeaseGrant(request.ID, ttl, self.clock()), rid)
            assert isinstance(result, LeaseGrantResult)
            return result
        for attempt in range(_ID_ATTEMPTS):
            try:
                # a retry with the same request id gets the first grant, whatever its id
                result = await self._propose(LeaseGrant(self._new_id(), ttl, self.clock()),
                                             rid if attempt == 0 else None)
            except LeaseExistsError:
                if attempt == _ID_ATTEMPTS - 1:
                    raise
                continue
            assert isinstance(result, LeaseGrantResult)
            return result
        raise AssertionError("unreachable")

    async def LeaseGrant(self, request: rpc_pb2.LeaseGrantRequest,
                         context: Ctx) -> rpc_pb2.LeaseGrantResponse:
        await refuse_without_space(self.no_space, context)

        async def run() -> rpc_pb2.LeaseGrantResponse:
            result = await self._grant(request, request_id(context))
            return rpc_pb2.LeaseGrantResponse(header=self.header(result.revision),
                                              ID=result.id, TTL=result.ttl_s)
        return await guarded(context, run)

    async def LeaseRevoke(self, request: rpc_pb2.LeaseRevokeRequest,
                          context: Ctx) -> rpc_pb2.LeaseRevokeResponse:
        async def run() -> rpc_pb2.LeaseRevokeResponse:
            result = await self._propose(LeaseRevoke(request.ID), request_id(context))
            assert isinstance(result, LeaseRevokeResult)
            return rpc_pb2.LeaseRevokeResponse(header=self.header(result.revision))
        return await guarded(context, run)

    async def _renew(self, lease_id: int) -> int:
        """The granted TTL after renewal; 0 if the lease does not exist (not an error).

        A renewal forwarded to a leader that dies is lost; as etcd's ``LeaseRenew`` does,
        retry it (with a fresh timestamp: renewing twice is harmless) every two election
        timeouts until the request timeout, so that a keep-alive stream keeps answering
        across a leader change instead of stalling until the client gives the lease up.
        """
        d = self.driver
        attempt_s = 2 * d.raw.raft.cfg.election_ticks * d.cfg.tick_interval_s
        deadline = time.monotonic() + d.cfg.request_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                result = await asyncio.wait_for(
                    self._propose(LeaseRenew(lease_id, self.clock())), min(attempt_s, left))
            except LeaseNotFoundError:
                return 0
            except TimeoutError:
                if time.monotonic() + 0.001 >= deadline:
                    raise RequestTimeoutError("etcdserver: request timed out") from None
                continue
            assert isinstance(result, LeaseRenewResult)
            return result.ttl_s

    async def LeaseKeepAlive(
            self, request_iterator: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest],
            context: Ctx) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        """One response per request, in order; the stream ends when the client half-closes.
        As in etcd, the header is taken before renewing."""
        async for request in request_iterator:
            header = self.header()
            try:
                ttl = await self._renew(request.ID)
            except RaftKVError as exc:
                code, message = to_status(exc)
                await context.abort(code, message)
            yield rpc_pb2.LeaseKeepAliveResponse(header=header, ID=request.ID, TTL=ttl)

    async def LeaseTimeToLive(self, request: rpc_pb2.LeaseTimeToLiveRequest,
                              context: Ctx) -> rpc_pb2.LeaseTimeToLiveResponse:
        async def run() -> rpc_pb2.LeaseTimeToLiveResponse:
            await self.driver.read_barrier()
            st = self.driver.sm.lease_status(request.ID, self.clock())
            if st is None:  # etcd answers, not fails: etcdctl prints "already expired"
                return rpc_pb2.LeaseTimeToLiveResponse(header=self.header(), ID=request.ID,
                                                       TTL=-1)
            remaining = max(0, int(st.remaining_ms / 1000))  # Go: int64(d.Seconds())
            if request.keys:  # the key names need READ on each (CVE-2023-32082)
                check_needs(self.driver.sm, lease_keys_footprint(st.keys, Perm.READ))
            keys = st.keys if request.keys else ()
            return rpc_pb2.LeaseTimeToLiveResponse(header=self.header(), ID=request.ID,
                                                   TTL=remaining, grantedTTL=st.ttl_s,
                                                   keys=keys)
        return await guarded(context, run)

    async def LeaseLeases(self, request: rpc_pb2.LeaseLeasesRequest,
                          context: Ctx) -> rpc_pb2.LeaseLeasesResponse:
        async def run() -> rpc_pb2.LeaseLeasesResponse:
            await self.driver.read_barrier()
            sm = self.driver.sm
            ids = sm.lease_ids()
            check_needs(sm, [n for i in ids for n in lease_keys_footprint(sm.lease_keys(i),
                                                                          Perm.READ)])
            leases = [rpc_pb2.LeaseStatus(ID=i) for i in ids]
            return rpc_pb2.LeaseLeasesResponse(header=self.header(), leases=leases)
        return await guarded(context, run)
