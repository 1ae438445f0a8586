"""``Election``: leader election over the server's ``v3electionpb`` service (etcd's
``concurrency.Election``)::

    async with client.election("service/leader", ttl=5) as election:
        await election.campaign(b"node-1")       # blocks until elected
        await election.proclaim(b"node-1 v2")    # update the leader's value
        ...                                      # leaving the block resigns

    async for leader in client.election("service/leader").observe():
        print(leader.value)                      # the current leader, then each change

Leadership is held through a lease that this object keeps alive; if it is lost, so is the
leadership (:meth:`Election.check`, :attr:`Election.lease`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from raftkv.client.lease import Lease
from raftkv.client.types import KeyLike, KeyValue, to_bytes
from raftkv.errors import (
    LeaseLostError,
    NoLeaderElectedError,
    NotElectedError,
    RaftKVError,
    UnavailableError,
)
from raftkv.wire.pb.v3electionpb import v3election_pb2

if TYPE_CHECKING:
    from raftkv.client.client import Client


class Election:
    """One election (see the module docstring)."""

    _sync_proxy = True

    def __init__(self, client: Client, name: bytes, *, ttl: int = 10) -> None:
        if not name:
            raise ValueError("election name must not be empty")
        self._client = client
        self.name = name
        self.ttl = ttl
        self.lease: Lease | None = None
        self._leader: v3election_pb2.LeaderKey | None = None

    @property
    def is_leader(self) -> bool:
        """True once :meth:`campaign` returned and until :meth:`resign` or a lost lease
        (by the lease's check, clock included: false after a pause longer than the TTL,
        even before the keep-alive task notices)."""
        if self._leader is None or self.lease is None:
            return False
        try:
            self.lease.check()
        except LeaseLostError:
            return False
        return True

    @property
    def leader_key(self) -> bytes:
        """Our key in the election (``b""`` when not campaigning)."""
        return self._leader.key if self._leader is not None else b""

    @property
    def revision(self) -> int:
        """The create revision of our key: grows with each new leader (a fencing token)."""
        return self._leader.rev if self._leader is not None else 0

    async def campaign(self, value: KeyLike, *, timeout: float | None = None) -> None:
        """Wait until elected, then lead with ``value``."""
        if self.lease is None or self.lease.is_lost:
            self.lease = await self._client.lease(self.ttl).grant()
        req = v3election_pb2.CampaignRequest(name=self.name, lease=self.lease.id,
                                             value=to_bytes(value, "value"))
        try:
            r = await self._client._call("election", "Campaign", req, blocking=True,
                                         timeout=timeout)
        except BaseException:
            with contextlib.suppress(RaftKVError):
                await self.lease.revoke()
            self.lease = None
            raise
        self._leader = r.leader

    async def proclaim(self, value: KeyLike) -> None:
        """Change the leader's value without an election.

        Raises:
            NotElectedError: we are not (or no longer) the leader.
        """
        if self._leader is None:
            raise NotElectedError("election: not leader")
        req = v3election_pb2.ProclaimRequest(leader=self._leader, value=to_bytes(value, "value"))
        await self._client._call("election", "Proclaim", req, write=True)

    async def resign(self) -> None:
        """Give leadership up (a no-op when not leading) and revoke the lease."""
        leader, self._leader = self._leader, None
        try:
            if leader is not None:
                with contextlib.suppress(NotElectedError):
                    await self._client._call("election", "Resign",
                                             v3election_pb2.ResignRequest(leader=leader),
                                             write=True)
        finally:
            if self.lease is not None:
                with contextlib.suppress(RaftKVError):
                    await self.lease.revoke()
                self.lease = None

    def check(self) -> None:
        """Raise :class:`NotElectedError` unless we lead (and our lease is not lost)."""
        if not self.is_leader:
            raise NotElectedError(f"election: not leader of {self.name!r}")

    async def leader(self) -> KeyValue | None:
        """The current leader's key and value, or ``None`` if nobody leads."""
        try:
            r = await self._client._call("election", "Leader",
                                         v3election_pb2.LeaderRequest(name=self.name))
        except NoLeaderElectedError:
            return None
        return KeyValue.from_pb(r.kv)

    async def observe(self) -> AsyncIterator[KeyValue]:
        """The current leader, then every change of leader or value, across member loss
        (each change once)."""
        last: tuple[bytes, int] | None = None
        backoff, reauthenticated = 0.05, False
        while True:
            call, generation, auth_generation = await self._client._open_stream(
                "election", "Observe", v3election_pb2.LeaderRequest(name=self.name))
            answered = False
            try:
                async for r in call:
                    answered = True
                    kv = KeyValue.from_pb(r.kv)
                    if (kv.key, kv.mod_revision) != last:
                        last = (kv.key, kv.mod_revision)
                        backoff, reauthenticated = 0.05, False
                        yield kv
            except grpc.RpcError as exc:
                err = self._client._map(exc, generation)
                if not reauthenticated and \
                        await self._client._reauthenticate(err, auth_generation):
                    reauthenticated = True  # once, until a response comes
                    continue
                if not isinstance(err, UnavailableError):
                    raise err from None
            else:  # an empty stream is etcd's answer to an observer it refuses (a stale
                # token, or no read permission): try once with a new token
                if not answered and not reauthenticated and \
                        await self._client._renew_token(auth_generation):
                    reauthenticated = True
                    continue
            finally:
                call.cancel()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def __aenter__(self) -> Election:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.resign()
