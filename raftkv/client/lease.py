"""``Lease``: a lease kept alive in the background, and told apart when it is lost.

::

    async with client.lease(ttl=5) as lease:
        await client.put("service/a", "up", lease=lease.id)
        ...                      # lease.check() raises LeaseLostError once it is lost
        await lease.wait_lost()  # or: lease.on_lost(callback), lease.is_lost

Keep-alives go over one ``LeaseKeepAlive`` stream, one request every ``ttl / 3`` seconds; a
broken stream is re-opened (on another member if need be) until the lease would have
expired. The lease counts as lost as soon as the server answers that it no longer exists,
or when no renewal succeeded for a whole TTL (measured from when the last successful
renewal was *sent*, so the client never believes in a lease the server has dropped);
:attr:`Lease.is_lost` and :meth:`Lease.check` also read the clock, so a process that was
paused (GC, swap, SIGSTOP) longer than the TTL sees the loss before its keep-alive task
has had a chance to run.

Leaving the ``async with`` block stops the keep-alives and revokes the lease. That is not
a loss: ``on_lost`` callbacks do not fire and :attr:`is_lost` stays false (as a kazoo
client's normal ``stop()`` is not an expired session); :attr:`revoked` becomes true,
:meth:`check` raises, and :meth:`wait_lost` returns ``False`` so nobody waits forever
(etcd's ``Session.Done()`` is closed by ``Close()`` the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc

from raftkv.client.types import LeaseTimeToLive
from raftkv.errors import LeaseLostError, LeaseNotFoundError, RaftKVError, UnavailableError
from raftkv.wire.pb.etcdserverpb import rpc_pb2

if TYPE_CHECKING:
    from raftkv.client.client import Client


class Lease:
    """A granted lease with a background keep-alive (see the module docstring).

    Attributes:
        id: the lease id (0 until granted).
        ttl: the TTL the server granted, in seconds.
    """

    _sync_proxy = True

    def __init__(self, client: Client, ttl: int, *, lease_id: int = 0) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be > 0 seconds, got {ttl}")
        self._client = client
        self.id = lease_id
        self.ttl = ttl
        self._lost = asyncio.Event()
        self._ended = asyncio.Event()  # lost or revoked by us
        self._reason = ""
        self.revoked = False
        """We revoked the lease ourselves (leaving ``async with``, :meth:`revoke`)."""
        self._callbacks: list[Callable[[Lease], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._expires_at = 0.0
        self._unregister: Callable[[], None] = lambda: None
        self._reauthenticated = False  # since the last keep-alive answered
        self.keepalive_paused = False
        """Tests only: stop sending keep-alives (simulates a paused process)."""

    # -- lifecycle -----------------------------------------------------------------------
    async def grant(self) -> Lease:
        """Grant the lease and start the keep-alive (``async with`` does this)."""
        sent = time.monotonic()
        g = await self._client.grant(self.ttl, id=self.id)
        self.id, self.ttl = g.id, g.ttl
        self._expires_at = sent + g.ttl
        self._task = asyncio.create_task(self._keep_alive(), name=f"raftkv-lease-{g.id:x}")
        self._unregister = self._client._on_close(self._stop)
        return self

    async def __aenter__(self) -> Lease:
        return await self.grant()

    async def __aexit__(self, *exc: object) -> None:
        await self.revoke()

    async def revoke(self) -> None:
        """Stop the keep-alive and revoke the lease (its keys are deleted). A lease that is
        already gone is not an error (but it was lost: ``on_lost`` fires if it had not)."""
        await self._stop()
        if self.id and not self._ended.is_set():
            try:
                await self._client.revoke(self.id)
            except LeaseNotFoundError:
                self._set_lost("expired or revoked on the server")
                return
            self.revoked = True
            self._ended.set()

    async def _stop(self) -> None:
        self._unregister()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- lost ----------------------------------------------------------------------------
    @property
    def is_lost(self) -> bool:
        """The lease is lost, or may be: the server said it is gone, or no keep-alive
        succeeded for a whole TTL by the clock (checked now). Not after our own revoke."""
        if not self._ended.is_set() and self._expires_at \
                and time.monotonic() >= self._expires_at:
            self._set_lost("no keep-alive succeeded within the TTL")
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if the lease is lost (or may be, by the clock) or
        was revoked."""
        if self.is_lost:
            raise LeaseLostError(f"raftkv: lease {self.id:x} lost: {self._reason}")
        if self.revoked:
            raise LeaseLostError(f"raftkv: lease {self.id:x} was revoked")

    async def wait_lost(self) -> bool:
        """Wait until the lease is lost (``True``) or we revoked it (``False``)."""
        await self._ended.wait()
        return self._lost.is_set()

    def on_lost(self, callback: Callable[[Lease], None]) -> None:
        """Call ``callback(lease)`` (on the event loop) when the lease is lost -- not
        when we revoke it."""
        if self._lost.is_set():
            callback(self)
        elif not self._ended.is_set():
            self._callbacks.append(callback)

    def _set_lost(self, reason: str) -> None:
        if self._ended.is_set():
            return
        self._reason = reason
        self._lost.set()
        self._ended.set()
        for cb in self._callbacks:
            cb(self)

    async def time_to_live(self, *, keys: bool = False) -> LeaseTimeToLive:
        return await self._client.time_to_live(self.id, keys=keys)

    # -- keep-alive ----------------------------------------------------------------------
    async def _keep_alive(self) -> None:
        backoff = 0.05
        while time.monotonic() < self._expires_at:
            try:
                await self._stream()
                return  # lost (the server said so)
            except RaftKVError as exc:
                if not isinstance(exc, UnavailableError):
                    break
            await asyncio.sleep(min(backoff, max(0.0, self._expires_at - time.monotonic())))
            backoff = min(backoff * 2, 1.0)
        self._set_lost("no keep-alive succeeded within the TTL")

    async def _stream(self) -> None:
        """One keep-alive stream; returns when the lease is gone, raises when it breaks."""
        sent_at: list[float] = []
        interval = max(0.2, self.ttl / 3)

        async def requests() -> AsyncIterator[rpc_pb2.LeaseKeepAliveRequest]:
            while True:
                while self.keepalive_paused:
                    await asyncio.sleep(0.05)
                sent_at.append(time.monotonic())
                yield rpc_pb2.LeaseKeepAliveRequest(ID=self.id)
                await asyncio.sleep(interval)

        call, generation, auth_generation = await self._client._open_stream(
            "lease", "LeaseKeepAlive", requests())
        try:
            it = call.__aiter__()
            while True:
                left = self._expires_at - time.monotonic()
                if left <= 0:
                    raise UnavailableError("keep-alive unanswered")
                try:
                    resp = await asyncio.wait_for(it.__anext__(), left)
                except (TimeoutError, StopAsyncIteration):
                    raise UnavailableError("keep-alive stream ended") from None
                if resp.TTL <= 0:
                    self._set_lost("expired or revoked on the server")
                    return
                if sent_at:
                    self._expires_at = max(self._expires_at, sent_at.pop(0) + resp.TTL)
                self._reauthenticated = False
        except grpc.RpcError as exc:
            err = self._client._map(exc, generation)
            if not self._reauthenticated and \
                    await self._client._reauthenticate(err, auth_generation):
                self._reauthenticated = True  # a new token: re-open the stream, once
                raise UnavailableError(f"keep-alive stream refused its token: {err}") from None
            raise err from None
        finally:
            call.cancel()
