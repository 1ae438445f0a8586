"""``Watch``: an async iterator over the changes to a key, range or prefix::

    async with client.watch("jobs/", prefix=True, start_revision=rev) as events:
        async for event in events:
            print(event.type, event.key, event.value, event.revision)

Without ``start_revision`` the start is pinned when ``client.watch()`` is called (see
:meth:`~raftkv.client.Client.watch`): every change committed after that call returned is
delivered, whether the watch is entered with ``async with`` or only iterated later.

A broken stream (the member died, a connection dropped) is re-opened -- on another member
if need be -- from the revision after the last one delivered, so the caller sees every
change exactly once and in revision order. If that revision has been compacted meanwhile,
iteration raises :class:`~raftkv.errors.CompactedError` (with ``compact_revision``): the
caller must re-read the state and watch again from the current revision. Leaving the
``async with`` block (or :meth:`Watch.cancel`) cancels the watch on the server.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from raftkv.client._errors import classify
from raftkv.client.types import Event
from raftkv.errors import (
    CompactedError,
    PermissionDeniedError,
    RaftKVError,
    UnavailableError,
    WatchCanceledError,
)
from raftkv.wire.pb.etcdserverpb import rpc_pb2

if TYPE_CHECKING:
    from raftkv.client.client import Client


class Watch:
    """An async iterator of :class:`~raftkv.client.types.Event` (see the module docstring).

    Attributes:
        next_revision: the revision the watch resumes from (after the last event seen).
        reconnects: how many times the stream was re-opened.
    """

    _sync_proxy = True

    def __init__(self, client: Client, key: bytes, range_end: bytes, *,
                 start: int | asyncio.Task[int] | None = 0, prev_kv: bool = False,
                 no_put: bool = False, no_delete: bool = False,
                 progress_notify: bool = False) -> None:
        self._client = client
        self._key, self._range_end = key, range_end
        self._filters = [f for f, on in ((rpc_pb2.WatchCreateRequest.NOPUT, no_put),
                                         (rpc_pb2.WatchCreateRequest.NODELETE, no_delete))
                         if on]
        self._prev_kv = prev_kv
        self._progress_notify = progress_notify
        self._pin = start if isinstance(start, asyncio.Task) else None
        self.next_revision = start if isinstance(start, int) else 0
        self.reconnects = -1
        self._pending: collections.deque[Event] = collections.deque()
        self._call: Any = None
        self._iter: Any = None
        self._generation = 0
        self._auth_generation = 0
        self._reauthenticated = False  # since the last response
        self._outbox: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self._watch_id = 0
        self._closed = False
        self._unregister = client._on_close(self.cancel)

    # -- iteration -----------------------------------------------------------------------
    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Event:
        backoff = 0.05
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            try:
                if self._call is None:
                    await self._connect()
                await self._receive()
                backoff = 0.05
            except UnavailableError:
                self._drop_stream()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        return self._pending.popleft()

    async def _connect(self) -> None:
        """Open a stream and create the watch from :attr:`next_revision`."""
        await self._resolve_start()
        self.reconnects += 1
        outbox: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self._outbox = outbox
        create = rpc_pb2.WatchCreateRequest(
            key=self._key, range_end=self._range_end, start_revision=self.next_revision,
            prev_kv=self._prev_kv, progress_notify=self._progress_notify,
            filters=self._filters)
        outbox.put_nowait(rpc_pb2.WatchRequest(create_request=create))

        async def requests() -> AsyncIterator[rpc_pb2.WatchRequest]:
            while (req := await outbox.get()) is not None:
                yield req

        self._call, self._generation, self._auth_generation = \
            await self._client._open_stream("watch", "Watch", requests())
        self._iter = self._call.__aiter__()

    async def _resolve_start(self) -> None:
        """Wait for the read that pins the start (a client with no response yet)."""
        if self._pin is None:
            return
        try:
            self.next_revision = await asyncio.shield(self._pin)
        except UnavailableError:  # no member answered: pin again, its calls wait again
            self._pin = self._client._pin_task(self._key, self._range_end)
            raise
        self._pin = None

    async def _receive(self) -> None:
        """Read one response; queue its new events."""
        try:
            resp = await self._iter.__anext__()
        except StopAsyncIteration:
            raise UnavailableError("watch stream ended") from None
        except grpc.RpcError as exc:
            await self._refused(self._client._map(exc, self._generation))
        self._client._observe(resp.header)
        if resp.created:
            self._watch_id = resp.watch_id
            if not self.next_revision and not resp.canceled:
                self.next_revision = resp.header.revision + 1
        if resp.canceled:
            refusal = auth_refusal(resp.cancel_reason)
            if refusal is not None:  # etcd refuses a watch create this way
                self._drop_stream()
                await self._refused(refusal)
            self._on_canceled(resp)
            return
        self._reauthenticated = False
        for pb in resp.events:
            ev = Event.from_pb(pb)
            if ev.kv.mod_revision >= self.next_revision:  # never twice, even on replay
                self._pending.append(ev)
        if self._pending:
            self.next_revision = self._pending[-1].kv.mod_revision + 1

    async def _refused(self, err: RaftKVError) -> NoReturn:
        """The stream failed (or its create was refused) with ``err``: re-open it with a
        new token if that cures it (once, until a response comes), else raise ``err``."""
        if not self._reauthenticated and \
                await self._client._reauthenticate(err, self._auth_generation):
            self._reauthenticated = True
            raise UnavailableError(f"watch refused its token: {err}")
        if isinstance(err, PermissionDeniedError):
            self._closed = True  # for good: iteration ends with err
        raise err

    def _on_canceled(self, resp: rpc_pb2.WatchResponse) -> None:
        self._drop_stream()
        if self._closed:
            return
        if resp.compact_revision:
            self._closed = True
            raise CompactedError(f"etcdserver: mvcc: required revision has been compacted "
                                 f"(watch from {self.next_revision}, compacted at "
                                 f"{resp.compact_revision})",
                                 compact_revision=resp.compact_revision)
        if "no leader" in resp.cancel_reason or not resp.cancel_reason:
            raise UnavailableError(resp.cancel_reason or "watch cancelled")
        self._closed = True
        raise WatchCanceledError(f"raftkv: watch cancelled by the server: {resp.cancel_reason}")

    def _drop_stream(self) -> None:
        if self._call is not None:
            self._outbox.put_nowait(None)
            self._call.cancel()
        self._call = self._iter = None

    # -- cancel --------------------------------------------------------------------------
    async def cancel(self) -> None:
        """Cancel the watch (idempotent); iteration then stops."""
        if self._closed and self._call is None:
            return
        self._closed = True
        self._unregister()
        if self._call is not None:
            cancel = rpc_pb2.WatchCancelRequest(watch_id=self._watch_id)
            self._outbox.put_nowait(rpc_pb2.WatchRequest(cancel_request=cancel))
            await asyncio.sleep(0)
        self._drop_stream()

    async def __aenter__(self) -> Watch:
        """Create the watch on the server before the block runs (its start was pinned
        when it was made, see :meth:`~raftkv.client.Client.watch`)."""
        await self.start()
        return self

    async def start(self) -> None:
        """Create the watch on the server now (idempotent); iteration does it otherwise.
        If no member answers, iteration retries from the same point."""
        if self._call is not None or self._closed:
            return
        try:
            await self._connect()
            await self._receive()  # the first response on a stream is the creation
        except UnavailableError:
            self._drop_stream()

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    async def aclose(self) -> None:
        await self.cancel()


def auth_refusal(reason: str) -> RaftKVError | None:
    """The auth error of a watch create refused as etcd refuses it (canceled, reason
    ``rpc error: code = Unauthenticated desc = etcdserver: invalid auth token``), else
    None."""
    prefix, sep, message = reason.partition(" desc = ")
    if not sep or not prefix.startswith("rpc error: code = "):
        return None
    err = classify(grpc.StatusCode.UNKNOWN, message)(message)
    return err if isinstance(err, PermissionDeniedError) else None
