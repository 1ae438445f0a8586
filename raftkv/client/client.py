"""``Client``: the asyncio client of raftkv (and of any etcd v3 server).

Every call goes through one :class:`~raftkv.client._transport.Transport` (real gRPC to
several members by default), maps failures onto :mod:`raftkv.errors` in one place
(:mod:`raftkv.client._errors`) and is retried by one policy (:mod:`raftkv.client.retry`)
only where that is safe. Writes carry a request id (gRPC metadata ``raftkv-request-id``)
that raftkv de-duplicates, so a write retried after a leader change or a member loss is
applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from raftkv.client import _errors, retry
from raftkv.client._admin import AdminMixin
from raftkv.client._transport import (
    DEDUP_KEY,
    PROBE_KEY,
    REQUEST_ID_KEY,
    TLS,
    Failover,
    GrpcTransport,
    Transport,
)
from raftkv.client.auth import (
    AuthMixin,
    AuthNotEnabledError,
    AuthOldRevisionError,
    InvalidAuthTokenError,
    UserEmptyError,
)
from raftkv.client.retry import Deadline, RetryPolicy
from raftkv.client.txn import Txn, _key_range
from raftkv.client.types import (
    DeleteResponse,
    Header,
    KeyLike,
    KeyValue,
    LeaseGrant,
    LeaseTimeToLive,
    PutResponse,
    RangeResponse,
    TxnResponse,
    to_bytes,
)
from raftkv.errors import (
    STALE_REQUEST_PREFIX,
    ClosedError,
    ConfigError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RaftKVError,
    UnavailableError,
)
from raftkv.wire.pb.etcdserverpb import rpc_pb2

if TYPE_CHECKING:
    from raftkv.client.election import Election
    from raftkv.client.lease import Lease
    from raftkv.client.lock import Lock
    from raftkv.client.stm import STM, Isolation
    from raftkv.client.watch import Watch

T = TypeVar("T")

TOKEN_KEY = "token"
"""gRPC metadata key of the auth token (etcd's clientv3 uses the same)."""
Metadata = tuple[tuple[str, str], ...]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""``timeout=DEFAULT``: the client's default deadline (``RetryPolicy.deadline_s``)."""

_SORT_ORDER = {None: rpc_pb2.RangeRequest.NONE, "ascend": rpc_pb2.RangeRequest.ASCEND,
               "descend": rpc_pb2.RangeRequest.DESCEND}
_SORT_TARGET = {"key": rpc_pb2.RangeRequest.KEY, "version": rpc_pb2.RangeRequest.VERSION,
                "create": rpc_pb2.RangeRequest.CREATE, "mod": rpc_pb2.RangeRequest.MOD,
                "value": rpc_pb2.RangeRequest.VALUE}


class _Session:
    """A de-duplication session: a random client id and its sequence numbers. ``ack`` on
    each request is the lowest seq still in flight (every lower one has been answered)."""

    MAX_IN_FLIGHT = 1000
    """Below the server's per-client record window (1024): a request still in flight is
    never pushed below the client's floor by its own later requests."""

    def __init__(self) -> None:
        self.client_id = secrets.randbits(63) or 1
        self._seq = itertools.count(1)
        self.inflight: set[int] = set()

    def begin(self) -> _Ticket:
        seq = next(self._seq)
        self.inflight.add(seq)
        return _Ticket(self, seq)

    def end(self, seq: int) -> None:
        self.inflight.discard(seq)


@dataclass(slots=True)
class _Ticket:
    session: _Session
    seq: int

    def metadata(self) -> tuple[tuple[str, str], ...]:
        ack = min(self.session.inflight, default=self.seq)
        return ((REQUEST_ID_KEY, f"{self.session.client_id:x}-{self.seq}-{ack}"),)


def _unknown(method: str, err: RaftKVError) -> OutcomeUnknownError:
    unknown = OutcomeUnknownError(f"raftkv: {method} may or may not have been applied: {err}")
    unknown.grpc_code = err.grpc_code
    return unknown


class Client(AdminMixin, AuthMixin):
    """An asyncio client for a raftkv (or etcd v3) cluster.

    Example::

        async with Client("127.0.0.1:2379,127.0.0.1:22379") as client:
            await client.put("greeting", "hello")
            kv = await client.get("greeting")        # KeyValue | None

    Args:
        endpoints: ``"host:port,host:port"``, a list, or ``http(s)://`` URLs. Calls stick
            to one member and fail over to the next on UNAVAILABLE or a lost connection.
        timeout: the default overall deadline of a call, retries included (``None``: none);
            every call also takes its own ``timeout=``.
        tls: TLS settings (``https://`` endpoints turn TLS on with the system roots).
        retry: the retry policy (``RetryPolicy.never()`` disables retries).
        username, password: authenticate as this user (auth enabled on the server). The
            client authenticates once, before its first call, sends the token (gRPC
            metadata ``token``) on every call and stream, keeps it across reconnects and
            failover, and authenticates again by itself when the server says the token is
            stale (see :meth:`authenticate`).
        token: a token obtained before (``auth_token`` of another client) to use until the
            server refuses it; with ``username`` and ``password`` the client then gets a
            new one.
    """

    def __init__(self, endpoints: str | Sequence[str] = "127.0.0.1:2379", *,
                 timeout: float | None = 30.0, tls: TLS | None = None,
                 retry: RetryPolicy | None = None, username: str | None = None,
                 password: str | None = None, token: str | None = None) -> None:
        self._init(GrpcTransport(endpoints, tls=tls), timeout, retry, username, password,
                   token)

    @classmethod
    def from_transport(cls, transport: Transport, *, timeout: float | None = 30.0,
                       retry: RetryPolicy | None = None, username: str | None = None,
                       password: str | None = None, token: str | None = None) -> Client:
        """A client whose calls all go through ``transport`` (see
        :mod:`raftkv.client._transport` for the shape it must have; with ``username``
        it needs an ``auth`` stub too)."""
        self = cls.__new__(cls)
        self._init(transport, timeout, retry, username, password, token)
        return self

    def _init(self, transport: Transport, timeout: float | None,
              policy: RetryPolicy | None, username: str | None = None,
              password: str | None = None, token: str | None = None) -> None:
        self._t: Transport = transport
        self._init_auth(username, password, token)
        self._retry = policy if policy is not None else RetryPolicy()
        self._timeout = timeout
        self._session = _Session()
        self._write_slots = asyncio.Semaphore(_Session.MAX_IN_FLIGHT)
        self._closed = False
        self._dedup: bool | None = getattr(transport, "deduplicates", None)
        self._closers: set[Callable[[], Awaitable[None]]] = set()
        self._seen_revision = 0
        self._pins: set[asyncio.Task[int]] = set()

    def _init_auth(self, username: str | None, password: str | None,
                   token: str | None) -> None:
        if password is not None and not username:
            raise ConfigError("Client: password given without username")
        if username and getattr(self._t, "auth", None) is None:
            raise ConfigError("Client: username given, but the transport has no auth stub")
        self._credentials = (username, password or "") if username else None
        self._token: str | None = token or None
        self._auth_generation = 1 if token else 0  # bumped by each Authenticate answered
        self._auth_lock = asyncio.Lock()

    @property
    def transport(self) -> Transport:
        return self._t

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop background work (keep-alives, watches) and close the connections."""
        if self._closed:
            return
        self._closed = True
        for closer in list(self._closers):
            with contextlib.suppress(RaftKVError, grpc.RpcError):
                await closer()
        close = getattr(self._t, "close", None)
        if close is not None:
            await close()

    def _on_close(self, closer: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``closer`` on :meth:`close`; returns the function that unregisters it."""
        self._closers.add(closer)
        return lambda: self._closers.discard(closer)

    # -- the one call path ---------------------------------------------------------------
    def _generation(self) -> int:
        return self._t.generation if isinstance(self._t, Failover) else 0

    def _failover(self, generation: int) -> None:
        if isinstance(self._t, Failover):
            self._t.failover(generation)

    def _deadline(self, timeout: float | None) -> Deadline:
        return Deadline(self._timeout if timeout is DEFAULT else timeout)

    def _map(self, exc: grpc.RpcError, generation: int) -> RaftKVError:
        """The raftkv error for a failed call; fails over first if the member is unusable."""
        err = _errors.from_rpc_error(exc)
        if isinstance(err, UnavailableError):
            self._failover(generation)
        return err

    # -- authentication ------------------------------------------------------------------
    @property
    def auth_token(self) -> str | None:
        """The token this client sends (``None``: none yet, or auth is off)."""
        return self._token

    async def authenticate(self, *, timeout: float | None = DEFAULT) -> str | None:
        """Authenticate now with the client's ``username`` and ``password`` (it does so by
        itself before its first call otherwise) and return the new token (``None`` when
        auth is off on the server).

        Raises:
            AuthFailedError: wrong user name or password.
        """
        if self._credentials is None:
            raise ConfigError("Client.authenticate: the client has no username")
        deadline = self._deadline(timeout)
        generation = self._auth_generation

        async def attempt() -> None:
            await self._authenticate(generation, deadline)

        await retry.run(self._retry, deadline, attempt)
        return self._token

    async def auth_metadata(self) -> Metadata:
        """The gRPC metadata that carries this client's token (empty without one),
        authenticating first if the client has credentials and no token yet: for calls
        made on :attr:`transport` directly."""
        await self._ensure_auth(self._deadline(DEFAULT))
        return self._token_metadata()

    def _token_metadata(self) -> Metadata:
        return ((TOKEN_KEY, self._token),) if self._token else ()

    async def _ensure_auth(self, deadline: Deadline) -> None:
        """Authenticate once, before the first call of a client with credentials."""
        if self._credentials is not None and self._auth_generation == 0:
            await self._authenticate(0, deadline)

    async def _authenticate(self, stale: int, deadline: Deadline) -> None:
        """One Authenticate, unless another call already replaced the token of
        authentication generation ``stale``. Auth off on the server: no token."""
        assert self._credentials is not None
        async with self._auth_lock:
            if self._auth_generation != stale:
                return
            name, password = self._credentials
            request = rpc_pb2.AuthenticateRequest(name=name, password=password)
            generation = self._generation()
            try:
                r = await self._t.auth.Authenticate(  # type: ignore[attr-defined]
                    request, timeout=deadline.attempt_timeout(self._retry.attempt_timeout_s))
            except grpc.RpcError as exc:
                err = self._map(exc, generation)
                if not isinstance(err, AuthNotEnabledError):
                    raise err from None
                self._token = None
            else:
                self._token = r.token or None
            self._auth_generation += 1

    def _stale_token(self, err: RaftKVError) -> bool:
        """``err`` is cured by a new token (and the client can get one)."""
        return self._credentials is not None and isinstance(
            err, InvalidAuthTokenError | AuthOldRevisionError | UserEmptyError)

    async def _reauthenticate(self, err: RaftKVError, generation: int) -> bool:
        """After a call sent with the token of authentication ``generation`` failed with
        ``err``: if a new token cures it, get one (once for all the calls that failed
        with the same token) and return True: the caller retries once."""
        if not self._stale_token(err):
            return False
        await self._authenticate(generation, self._deadline(DEFAULT))
        return True

    async def _renew_token(self, generation: int) -> bool:
        """A new token in place of the one of authentication ``generation`` (a stream
        ended as a refused one does); False without credentials."""
        if self._credentials is None:
            return False
        await self._authenticate(generation, self._deadline(DEFAULT))
        return True

    def _own_password_changed(self, name: str, password: str) -> None:
        if self._credentials is not None and self._credentials[0] == name:
            self._credentials = (name, password)

    async def _call(self, service: str, method: str, request: Any, *, write: bool = False,
                    timeout: float | None = DEFAULT, blocking: bool = False,
                    pinning: bool = False, dedup: bool = True) -> Any:
        """One unary call with failover, error mapping and (safe) retries.

        Args:
            write: the call changes state: it carries a request id when the server
                de-duplicates, and is retried only then (or when it surely was not sent).
            blocking: the call may legitimately wait long (Lock, Campaign): no per-attempt
                timeout below the overall deadline.
            pinning: the read that pins a watch's start (see :meth:`_watch_start`); every
                other call waits until the pins made before it are known.
            dedup: False for a write the server does not de-duplicate even when it
                de-duplicates others (the Auth service's).
        """
        if self._closed:
            raise ClosedError("raftkv: the client is closed")
        if self._pins and not pinning:
            await asyncio.wait(list(self._pins))
        result = await self._call_once(service, method, request, write=write,
                                       timeout=timeout, blocking=blocking, dedup_ok=dedup)
        self._observe(getattr(result, "header", None))
        return result

    def _observe(self, header: Any) -> None:
        """Remember the newest store revision a response has shown this client."""
        revision = getattr(header, "revision", 0)
        if revision > self._seen_revision:
            self._seen_revision = revision

    def _watch_start(self, key: bytes = b"\0",
                     range_end: bytes = b"") -> int | asyncio.Task[int] | None:
        """Where a watch created now without ``start_revision`` starts: right after the
        newest revision a response has shown this client. The cluster's revision is at
        least that now, so every change committed after this returns is above it and is
        delivered (changes made since that response may be delivered too). A client with
        no response yet learns the current revision with a linearizable read started
        now, and its later calls wait for that read. ``None`` outside an event loop
        (the watch then starts when it is created on the server). The read is of the
        watched keys (one at most), which a user allowed to watch them may read."""
        if self._seen_revision:
            return self._seen_revision + 1
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._pin_task(key, range_end)

    def _pin_task(self, key: bytes = b"\0", range_end: bytes = b"") -> asyncio.Task[int]:
        """Start the linearizable read that pins a watch's start; calls wait for it."""
        task = asyncio.get_running_loop().create_task(self._current_revision(key, range_end),
                                                      name="raftkv-watch-pin")
        self._pins.add(task)
        task.add_done_callback(self._pin_done)
        return task

    async def _current_revision(self, key: bytes, range_end: bytes) -> int:
        request = rpc_pb2.RangeRequest(key=key, range_end=range_end, limit=1, keys_only=True)
        r = await self._call("kv", "Range", request, pinning=True)
        return int(r.header.revision) + 1

    def _pin_done(self, task: asyncio.Task[int]) -> None:
        self._pins.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here; the watch that awaits it sees it too

    async def _call_once(self, service: str, method: str, request: Any, *, write: bool,
                         timeout: float | None, blocking: bool, dedup_ok: bool = True) -> Any:
        deadline = self._deadline(timeout)
        dedup = write and dedup_ok and self._retry.max_attempts != 1 and \
            await self._deduplicates(deadline)
        if dedup:
            await self._write_slots.acquire()
        ticket = self._session.begin() if dedup else None
        cap = None if blocking else self._retry.attempt_timeout_s
        attempts = 0
        reauthenticated = False

        async def attempt() -> Any:
            nonlocal ticket, attempts, reauthenticated
            attempts += 1
            await self._ensure_auth(deadline)
            generation, auth_generation = self._generation(), self._auth_generation
            metadata = (*(ticket.metadata() if ticket is not None else ()),
                        *self._token_metadata())
            stub = getattr(self._t, service)
            try:
                return await getattr(stub, method)(
                    request, timeout=deadline.attempt_timeout(cap), metadata=metadata or None)
            except grpc.RpcError as exc:
                err = self._map(exc, generation)
            if not reauthenticated and await self._reauthenticate(err, auth_generation):
                reauthenticated = True  # once per call
                if ticket is not None and isinstance(err, AuthOldRevisionError):
                    ticket = self._renew(ticket)  # refused at apply, and recorded so
                return await attempt()
            if ticket is not None and str(err).startswith(STALE_REQUEST_PREFIX):
                if attempts > 1:  # an earlier attempt may have been applied
                    raise _unknown(method, err) from err
                # a first attempt of a session the server forgot: a new session, re-send
                ticket.session.end(ticket.seq)
                self._session = _Session()
                ticket = self._session.begin()
                return await attempt()
            if write and not dedup and isinstance(err, UnavailableError) \
                    and not _errors.never_sent(err):
                raise _unknown(method, err) from err
            raise err

        try:
            return await retry.run(self._retry, deadline, attempt)
        finally:
            if ticket is not None:
                ticket.session.end(ticket.seq)
                self._write_slots.release()

    def _renew(self, ticket: _Ticket) -> _Ticket:
        """A new request id for a write whose id has a recorded refusal: the server
        applied that id once, as the refusal, so the write itself was not applied."""
        ticket.session.end(ticket.seq)
        return self._session.begin()

    @property
    def client_id(self) -> int:
        """Identifies this client's writes to the server's de-duplication table (changes
        if the server forgets the client and a new session starts)."""
        return self._session.client_id

    async def _deduplicates(self, deadline: Deadline) -> bool:
        """Whether the server de-duplicates request ids (asked once, with a read)."""
        if self._dedup is None:
            async def probe() -> bool:
                return await self._probe(deadline, False)

            self._dedup = await retry.run(self._retry, deadline, probe)
        return self._dedup

    async def _probe(self, deadline: Deadline, reauthenticated: bool) -> bool:
        """One probe. A refused probe still answers in its trailers (a user without read
        permission on the probed key)."""
        request = rpc_pb2.RangeRequest(key=b"\0", serializable=True, keys_only=True)
        await self._ensure_auth(deadline)
        generation, auth_generation = self._generation(), self._auth_generation
        md: Any = ()
        try:
            call = self._t.kv.Range(request, timeout=deadline.attempt_timeout(
                self._retry.attempt_timeout_s),
                metadata=((PROBE_KEY, "dedup"), *self._token_metadata()))
            await call
            trailing = getattr(call, "trailing_metadata", None)
            md = await trailing() if trailing is not None else ()
        except grpc.RpcError as exc:
            err = self._map(exc, generation)
            if not reauthenticated and await self._reauthenticate(err, auth_generation):
                return await self._probe(deadline, True)
            if not isinstance(err, PermissionDeniedError):
                raise err from None
            trailing = getattr(exc, "trailing_metadata", None)
            md = trailing() if callable(trailing) else ()
        return any(k == DEDUP_KEY and v == "1" for k, v in (md or ()))

    # -- KV ------------------------------------------------------------------------------
    async def get(self, key: KeyLike, *, revision: int = 0, serializable: bool = False,
                  timeout: float | None = DEFAULT) -> KeyValue | None:
        """The key's value and metadata, or ``None`` if it does not exist (at ``revision``,
        0: now). ``serializable`` reads the member's local state (may be stale, faster)."""
        r = await self.range(key, revision=revision, serializable=serializable,
                             timeout=timeout)
        return r.kvs[0] if r.kvs else None

    async def get_prefix(self, prefix: KeyLike, **options: Any) -> RangeResponse:
        """Every key starting with ``prefix`` (``""``: every key; options as
        :meth:`range`)."""
        return await self.range(prefix, prefix=True, **options)

    async def get_all(self, **options: Any) -> RangeResponse:
        """Every key (options as :meth:`range`)."""
        return await self.range(b"\0", range_end=b"\0", **options)

    async def range(self, key: KeyLike, range_end: KeyLike | None = None, *,
                    prefix: bool = False, limit: int = 0, revision: int = 0,
                    sort_order: str | None = None, sort_target: str = "key",
                    serializable: bool = False, keys_only: bool = False,
                    count_only: bool = False, min_mod_revision: int = 0,
                    max_mod_revision: int = 0, min_create_revision: int = 0,
                    max_create_revision: int = 0,
                    timeout: float | None = DEFAULT) -> RangeResponse:
        """Read a key, a range ``[key, range_end)`` or a prefix, with etcd's options.

        ``sort_order`` is ``None``, ``"ascend"`` or ``"descend"``; ``sort_target`` one of
        ``key version create mod value``. ``limit`` 0 means no limit.
        """
        if sort_order not in _SORT_ORDER or sort_target not in _SORT_TARGET:
            raise ValueError(f"sort_order {sort_order!r} / sort_target {sort_target!r}: "
                             f"use {list(_SORT_ORDER)} / {list(_SORT_TARGET)}")
        k, end = _key_range(key, prefix, range_end)
        req = rpc_pb2.RangeRequest(
            key=k, range_end=end, limit=limit,
            revision=revision, sort_order=_SORT_ORDER[sort_order],
            sort_target=_SORT_TARGET[sort_target], serializable=serializable,
            keys_only=keys_only, count_only=count_only, min_mod_revision=min_mod_revision,
            max_mod_revision=max_mod_revision, min_create_revision=min_create_revision,
            max_create_revision=max_create_revision)
        return RangeResponse.from_pb(await self._call("kv", "Range", req, timeout=timeout))

    async def put(self, key: KeyLike, value: KeyLike, *, lease: int = 0, prev_kv: bool = False,
                  ignore_value: bool = False, ignore_lease: bool = False,
                  timeout: float | None = DEFAULT) -> PutResponse:
        """Set ``key`` to ``value`` (attached to ``lease``, 0: none)."""
        req = rpc_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value, "value"),
                                 lease=lease, prev_kv=prev_kv, ignore_value=ignore_value,
                                 ignore_lease=ignore_lease)
        return PutResponse.from_pb(await self._call("kv", "Put", req, write=True,
                                                    timeout=timeout))

    async def delete(self, key: KeyLike, *, prev_kv: bool = False,
                     timeout: float | None = DEFAULT) -> DeleteResponse:
        """Delete one key (``deleted`` is 0 if it did not exist)."""
        return await self.delete_range(key, prev_kv=prev_kv, timeout=timeout)

    async def delete_prefix(self, prefix: KeyLike, *, prev_kv: bool = False,
                            timeout: float | None = DEFAULT) -> DeleteResponse:
        """Delete every key starting with ``prefix`` (``""``: every key)."""
        k, end = _key_range(prefix, True, None)
        return await self.delete_range(k, end, prev_kv=prev_kv, timeout=timeout)

    async def delete_range(self, key: KeyLike, range_end: KeyLike | None = None, *,
                           prev_kv: bool = False,
                           timeout: float | None = DEFAULT) -> DeleteResponse:
        """Delete ``key``, or the keys of ``[key, range_end)``."""
        k, end = _key_range(key, False, range_end)
        req = rpc_pb2.DeleteRangeRequest(key=k, range_end=end,
                                         prev_kv=prev_kv)
        return DeleteResponse.from_pb(await self._call("kv", "DeleteRange", req, write=True,
                                                       timeout=timeout))

    async def compact(self, revision: int, *, physical: bool = False,
                      timeout: float | None = DEFAULT) -> Header:
        """Drop the history below ``revision`` (watches and reads before it then fail
        with :class:`~raftkv.errors.CompactedError`)."""
        req = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        r = await self._call("kv", "Compact", req, write=True, timeout=timeout)
        return Header.from_pb(r.header)

    def txn(self) -> Txn:
        """A new transaction builder bound to this client (see :mod:`raftkv.client.txn`)."""
        return Txn(committer=self._commit)

    async def _commit(self, txn: Txn, timeout: float | None = DEFAULT) -> TxnResponse:
        r = await self._call("kv", "Txn", txn.to_pb(), write=not txn.read_only,
                             timeout=timeout)
        return TxnResponse.from_pb(r)

    async def stm(self, fn: Callable[[STM], Awaitable[T]], *,
                  isolation: Isolation = "serializable", retries: int = 50,
                  prefetch: Sequence[KeyLike] = ()) -> T:
        """Run ``fn`` as an optimistic read-modify-write transaction (see
        :func:`raftkv.client.stm.run_stm`)."""
        from raftkv.client.stm import run_stm
        return await run_stm(self, fn, isolation=isolation, retries=retries,
                             prefetch=prefetch)

    # -- leases --------------------------------------------------------------------------
    async def grant(self, ttl: int, *, id: int = 0,
                    timeout: float | None = DEFAULT) -> LeaseGrant:
        """Grant a lease of ``ttl`` seconds (the server may raise it to its minimum)."""
        r = await self._call("lease", "LeaseGrant", rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=id),
                             write=True, timeout=timeout)
        return LeaseGrant(Header.from_pb(r.header), r.ID, r.TTL)

    async def revoke(self, lease_id: int, *, timeout: float | None = DEFAULT) -> Header:
        """Revoke a lease: delete it and every key attached to it."""
        r = await self._call("lease", "LeaseRevoke", rpc_pb2.LeaseRevokeRequest(ID=lease_id),
                             write=True, timeout=timeout)
        return Header.from_pb(r.header)

    async def time_to_live(self, lease_id: int, *, keys: bool = False,
                           timeout: float | None = DEFAULT) -> LeaseTimeToLive:
        """The remaining TTL of a lease (``ttl == -1``: it does not exist)."""
        req = rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys)
        r = await self._call("lease", "LeaseTimeToLive", req, timeout=timeout)
        return LeaseTimeToLive(Header.from_pb(r.header), r.ID, r.TTL, r.grantedTTL,
                               tuple(r.keys))

    async def leases(self, *, timeout: float | None = DEFAULT) -> tuple[int, ...]:
        """Every lease id."""
        r = await self._call("lease", "LeaseLeases", rpc_pb2.LeaseLeasesRequest(),
                             timeout=timeout)
        return tuple(s.ID for s in r.leases)

    def lease(self, ttl: int = 10, *, id: int = 0) -> Lease:
        """A lease kept alive in the background while ``async with`` it (see
        :class:`raftkv.client.lease.Lease`)."""
        from raftkv.client.lease import Lease
        return Lease(self, ttl, lease_id=id)

    # -- recipes -------------------------------------------------------------------------
    def lock(self, name: KeyLike, *, ttl: int = 10, timeout: float | None = None) -> Lock:
        """A distributed lock with a fencing token (see :class:`raftkv.client.lock.Lock`)."""
        from raftkv.client.lock import Lock
        return Lock(self, to_bytes(name, "lock name"), ttl=ttl, timeout=timeout)

    def election(self, name: KeyLike, *, ttl: int = 10) -> Election:
        """A leader election (see :class:`raftkv.client.election.Election`)."""
        from raftkv.client.election import Election
        return Election(self, to_bytes(name, "election name"), ttl=ttl)

    def watch(self, key: KeyLike, range_end: KeyLike | None = None, *, prefix: bool = False,
              start_revision: int = 0, prev_kv: bool = False, no_put: bool = False,
              no_delete: bool = False, progress_notify: bool = False) -> Watch:
        """Watch a key, range or prefix: ``async for event in client.watch(...)`` (see
        :class:`raftkv.client.watch.Watch`). Without ``start_revision`` the start is
        pinned by this call: every change committed after it returns is delivered, even
        if iteration begins later."""
        from raftkv.client.watch import Watch
        k, end = _key_range(key, prefix, range_end)
        return Watch(self, k, end, start=start_revision or self._watch_start(k, end),
                     prev_kv=prev_kv, no_put=no_put, no_delete=no_delete,
                     progress_notify=progress_notify)

    # -- streams (for the recipes) -------------------------------------------------------
    async def _open_stream(self, service: str, method: str,
                           requests: AsyncIterator[Any] | Any) -> tuple[Any, int, int]:
        """Open a streaming call on the current member (with the token, authenticating
        first if need be); returns it, its member generation and its authentication
        generation (for :meth:`_reauthenticate` when it fails)."""
        if self._closed:
            raise ClosedError("raftkv: the client is closed")
        await self._ensure_auth(self._deadline(DEFAULT))
        generation, auth_generation = self._generation(), self._auth_generation
        open_call = getattr(getattr(self._t, service), method)
        metadata = self._token_metadata()
        call = open_call(requests, metadata=metadata) if metadata else open_call(requests)
        return call, generation, auth_generation

    async def keep_alive_once(self, lease_id: int) -> int:
        """Renew a lease once; returns its new TTL (``<= 0``: the lease is gone)."""
        reauthenticated = False
        while True:
            request = rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)
            call, generation, auth_generation = await self._open_stream(
                "lease", "LeaseKeepAlive", iter([request]))
            ttl = 0
            try:
                async for r in call:
                    ttl = r.TTL
                return int(ttl)
            except grpc.RpcError as exc:
                err = self._map(exc, generation)
                if reauthenticated or not await self._reauthenticate(err, auth_generation):
                    raise err from None
                reauthenticated = True
            finally:
                call.cancel()
