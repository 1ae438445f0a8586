"""``--auth``: the run's users, the members' auth flags, and tokens on the harness's channels.

Before the workload starts the harness (:meth:`ClusterAuth.enable`, through one member,
with no token: auth is still off) adds user ``root`` with the ``root`` role, a role
``chaos`` whose one permission is READWRITE on the workload's key prefix
(:func:`chaos.workloads.key_prefix`), user ``chaos`` holding it, and enables auth. The
passwords are random per run (``<out>/auth.json``, mode 0600). Every client of the workload
then acts as ``chaos``; the harness's own calls (probes, ``Status``, the Cluster API of the
member nemesis and of reconciliation) act as ``root``.

Raw channels get their token from :class:`Tokens` through client interceptors
(:func:`open_channel`): one ``Authenticate`` when a :class:`Tokens` has no token yet, then
the token in the ``token`` metadata of every call and stream. A unary call the member
refuses because of its token (:func:`stale_token`: ``invalid auth token``, ``user name is
empty``, ``revision of auth store is old`` — refusals made before anything is applied) is
sent once more with a new token (one ``Authenticate`` for all the calls that failed with
the same token), inside the call's own deadline. If no token can be had (the member is cut
off, the deadline is spent) the request is not sent and the call raises :class:`NotSent`,
which :class:`chaos.client.Client` records as ``fail``: it certainly did not apply. Any
other error of the second attempt is classified as without auth.

Members run with ``--bcrypt-cost 4`` (the harness's passwords protect nothing) and, with
``--auth-token-ttl S``, a short token TTL, so that tokens go stale during a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from raftkv import errors as e
from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

__all__ = ["BCRYPT_COST", "ROOT", "USER", "ClusterAuth", "Credentials", "NotSent",
           "Tokens", "auth_errors", "expected", "open_channel", "prefix_end", "probe_enforcement",
           "stale_token"]

log = logging.getLogger("chaos.auth")

ROOT = "root"
USER = "chaos"
"""The workload's user, and the name of its one role."""
BCRYPT_COST = 4
TOKEN_KEY = "token"
AUTHENTICATE = "/etcdserverpb.Auth/Authenticate"
AUTH_TIMEOUT_S = 5.0
"""The deadline of an ``Authenticate`` made for a call without one (a stream)."""

STALE = (e.AUTH_INVALID_TOKEN, e.AUTH_USER_EMPTY, e.AUTH_OLD_REVISION)
"""Refusals a new token cures. Each is made before the request takes effect (at the
member's gate, in the read check, or when the entry is applied, which then changes
nothing), so the request can be sent again."""

_CODES = {e.AUTH_INVALID_TOKEN: grpc.StatusCode.UNAUTHENTICATED,
          e.AUTH_USER_EMPTY: grpc.StatusCode.INVALID_ARGUMENT,
          e.AUTH_OLD_REVISION: grpc.StatusCode.INVALID_ARGUMENT}

_MESSAGES = tuple(sorted({str(getattr(e, n)) for n in dir(e) if n.startswith("AUTH_")},
                         key=len, reverse=True))

_REQ = TypeVar("_REQ")
_RESP = TypeVar("_RESP")


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` of every key starting with ``prefix`` (etcd's ``--prefix``)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def stale_token(exc: BaseException) -> bool:
    """``exc`` is a member's refusal that a new token cures (see :data:`STALE`)."""
    if not isinstance(exc, grpc.aio.AioRpcError) or isinstance(exc, NotSent):
        return False
    details = exc.details() or ""
    return any(exc.code() == _CODES[m] and details == m for m in STALE)


def auth_errors(errors: Iterable[str | None]) -> dict[str, int]:
    """How many of the history's ``error`` fields are an auth refusal, by etcd's message
    (``permission denied`` would mean the role's grant misses a key the workload uses);
    ``not sent`` counts requests not sent for want of a token."""
    counts: dict[str, int] = {}
    for error in errors:
        if not error:
            continue
        if error.startswith(NotSent.PREFIX) or f": {NotSent.PREFIX}" in error:
            counts["not sent"] = counts.get("not sent", 0) + 1
            continue
        for m in _MESSAGES:
            if m in error:
                short = m.split(": ", 1)[1]
                counts[short] = counts.get(short, 0) + 1
                break
    return dict(sorted(counts.items()))


class NotSent(grpc.aio.AioRpcError):
    """The request was not sent: it had no token, or its first attempt was refused for its
    token, and no new one could be had (``Authenticate`` failed, or no time was left).
    Certainly not applied (:class:`chaos.client.Client` records it as ``fail``)."""

    PREFIX = "not sent, no token: "

    def __init__(self, why: str, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(),
                         details=self.PREFIX + why)


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass(frozen=True)
class ClusterAuth:
    """A run's users and the workload's grant (see the module docstring)."""

    root: Credentials
    user: Credentials
    key: bytes
    range_end: bytes
    token_ttl_s: int | None = None

    @classmethod
    def new(cls, prefix: bytes, *, token_ttl_s: int | None = None) -> ClusterAuth:
        """Random passwords; READWRITE on every key starting with ``prefix``."""
        return cls(Credentials(ROOT, secrets.token_urlsafe(12)),
                   Credentials(USER, secrets.token_urlsafe(12)), prefix, prefix_end(prefix),
                   token_ttl_s)

    def server_flags(self) -> list[str]:
        ttl = [] if self.token_ttl_s is None else ["--auth-token-ttl", str(self.token_ttl_s)]
        return ["--bcrypt-cost", str(BCRYPT_COST), *ttl]

    def summary(self) -> dict[str, object]:
        """For results.json (no password)."""
        return {"users": [ROOT, self.user.user], "role": USER, "perm": "READWRITE",
                "key": self.key.decode(errors="replace"),
                "range_end": self.range_end.decode(errors="replace"),
                "member_flags": self.server_flags()}

    def write(self, path: Path) -> None:
        """The credentials, for etcdctl by hand (``--user root:<password>``); mode 0600."""
        data = {**self.summary(), "passwords": {self.root.user: self.root.password,
                                                self.user.user: self.user.password}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data, indent=1) + "\n")

    def steps(self) -> list[tuple[str, Any]]:
        """The Auth API calls that set the run's users up and turn auth on, in order."""
        grant = auth_pb2.Permission(permType=auth_pb2.Permission.READWRITE, key=self.key,
                                    range_end=self.range_end)
        return [
            ("UserAdd", rpc_pb2.AuthUserAddRequest(name=ROOT, password=self.root.password)),
            ("UserGrantRole", rpc_pb2.AuthUserGrantRoleRequest(user=ROOT, role=ROOT)),
            ("RoleAdd", rpc_pb2.AuthRoleAddRequest(name=USER)),
            ("RoleGrantPermission", rpc_pb2.AuthRoleGrantPermissionRequest(name=USER,
                                                                           perm=grant)),
            ("UserAdd", rpc_pb2.AuthUserAddRequest(name=self.user.user,
                                                   password=self.user.password)),
            ("UserGrantRole", rpc_pb2.AuthUserGrantRoleRequest(user=self.user.user,
                                                               role=USER)),
            ("AuthEnable", rpc_pb2.AuthEnableRequest()),
        ]

    async def enable(self, channels: Callable[[], Sequence[grpc.aio.Channel]],
                     timeout_s: float) -> None:
        """Run :meth:`steps` through the first of ``channels()`` that answers each (plain
        channels: auth is off until the last step), retrying; a step whose earlier attempt
        took effect ("already exists") counts as done, and so does an ``AuthEnable`` whose
        answer was lost (``AuthStatus`` says enabled).

        Raises:
            TimeoutError: not done within ``timeout_s`` (the message names the step).
        """
        deadline = time.monotonic() + timeout_s
        last = "no member answered"
        for method, request in self.steps():
            while True:
                done, last = await self._step(channels(), method, request)
                if done:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{method} did not succeed within {timeout_s:g}s: "
                                       f"{last}")
                await asyncio.sleep(0.3)

    @staticmethod
    async def _step(channels: Sequence[grpc.aio.Channel], method: str, request: Any
                    ) -> tuple[bool, str]:
        last = "no member to ask"
        for ch in channels:
            stub = rpc_pb2_grpc.AuthStub(ch)  # type: ignore[no-untyped-call]
            try:
                await getattr(stub, method)(request, timeout=5.0)
                return True, ""
            except grpc.aio.AioRpcError as exc:
                last = f"{exc.code().name}: {exc.details()}"
                if "already exists" in (exc.details() or ""):
                    return True, ""
            if method == "AuthEnable":
                try:
                    st = await stub.AuthStatus(rpc_pb2.AuthStatusRequest(), timeout=5.0)
                    if st.enabled:
                        return True, ""
                except grpc.aio.AioRpcError:
                    pass
        return False, last


def expected(mtls: bool) -> dict[str, str]:
    """What :func:`probe_enforcement` must see once auth is on. Without a token a request
    has no user (``user name is empty``), except under mutual TLS, where the member takes
    the client certificate's CN (``client``) as the user, and no such user exists
    (``permission denied``; etcd does the same)."""
    return {"no token": e.AUTH_PERMISSION_DENIED if mtls else e.AUTH_USER_EMPTY,
            "outside the grant": e.AUTH_PERMISSION_DENIED}


async def probe_enforcement(target: str, credentials: grpc.ChannelCredentials | None,
                            auth: ClusterAuth) -> dict[str, str]:
    """Ask member ``target`` what a linearizable Range without a token gets, and what the
    workload user's Put of the first key past its grant (``range_end``) gets: each
    refusal's details, or ``accepted``. With auth enforced: :func:`expected`."""
    plain = open_channel(target, credentials)
    as_user = open_channel(target, credentials, Tokens(auth.user))
    try:
        anonymous = rpc_pb2_grpc.KVStub(plain)  # type: ignore[no-untyped-call]
        user = rpc_pb2_grpc.KVStub(as_user)  # type: ignore[no-untyped-call]
        return {
            "no token": await _answer(anonymous.Range(rpc_pb2.RangeRequest(key=auth.key),
                                                      timeout=5.0)),
            "outside the grant": await _answer(user.Put(
                rpc_pb2.PutRequest(key=auth.range_end, value=b"x"), timeout=5.0)),
        }
    finally:
        await plain.close()
        await as_user.close()


async def _answer(call: Awaitable[Any]) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.details() or exc.code().name
    return "accepted"


@dataclass
class Tokens:
    """One user's token, shared by every channel acting as that user: one
    ``Authenticate`` at a time, and one per stale token however many calls it failed."""

    credentials: Credentials
    token: str | None = None
    generation: int = 0
    authenticated: int = 0
    reauthenticated: int = 0
    failed: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def counts(self) -> dict[str, int]:
        return {"authenticated": self.authenticated, "reauthenticated": self.reauthenticated,
                "failed": self.failed}

    async def current(self, stub: Any, timeout_s: float | None) -> tuple[str, int]:
        """The token and its generation, authenticating first if there is none."""
        if self.token is None:
            await self.renew(self.generation, stub, timeout_s)
        assert self.token is not None
        return self.token, self.generation

    async def renew(self, stale: int, stub: Any, timeout_s: float | None) -> None:
        """A new token through ``stub`` (an Auth stub on the channel whose call needs it),
        unless generation ``stale`` was already replaced.

        Raises:
            NotSent: ``Authenticate`` failed (with its code and details) or timed out.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + (AUTH_TIMEOUT_S if timeout_s is None else timeout_s)
        async with self._lock:
            if self.generation != stale and self.token is not None:
                return
            left = end - loop.time()
            if left <= 0:
                self.failed += 1
                raise NotSent("no time left to authenticate", grpc.StatusCode.DEADLINE_EXCEEDED)
            request = rpc_pb2.AuthenticateRequest(name=self.credentials.user,
                                                  password=self.credentials.password)
            try:
                r = await stub.Authenticate(request, timeout=left)
            except grpc.aio.AioRpcError as exc:
                self.failed += 1
                raise NotSent(f"Authenticate failed: {exc.code().name}: {exc.details()}",
                              exc.code()) from exc
            renewal = self.token is not None
            self.token = str(r.token)
            self.generation += 1
            if renewal:
                self.reauthenticated += 1
            else:
                self.authenticated += 1


def _method(details: grpc.aio.ClientCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode() if isinstance(method, bytes) else method


def _with_token(details: grpc.aio.ClientCallDetails, token: str,
                timeout_s: float | None) -> grpc.aio.ClientCallDetails:
    pairs = [(k, v) for k, v in (details.metadata or ()) if k != TOKEN_KEY]
    return grpc.aio.ClientCallDetails(details.method, timeout_s,
                                      grpc.aio.Metadata(*pairs, (TOKEN_KEY, token)),
                                      details.credentials, details.wait_for_ready)


class _ChannelAuth:
    """The interceptors' shared state on one channel: its user's :class:`Tokens` and an
    Auth stub on the channel itself (set once the channel exists)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.stub: Any = None

    async def unary(self, send: Callable[[grpc.aio.ClientCallDetails], Awaitable[Any]],
                    details: grpc.aio.ClientCallDetails) -> Any:
        loop = asyncio.get_running_loop()
        end = None if details.timeout is None else loop.time() + details.timeout

        def left() -> float | None:
            return None if end is None else end - loop.time()

        def time_left(why: str) -> float | None:
            remaining = left()
            if remaining is not None and remaining <= 0:  # waited for another's Authenticate
                raise NotSent(f"{why}, and no time was left to send it",
                              grpc.StatusCode.DEADLINE_EXCEEDED)
            return remaining

        token, generation = await self.tokens.current(self.stub, left())
        try:
            return await send(_with_token(details, token, time_left("authenticated")))
        except grpc.aio.AioRpcError as exc:
            if not stale_token(exc):
                raise
            why = f"refused ({exc.details()})"
        log.info("token %s: authenticating again as %s", why, self.tokens.credentials.user)
        await self.tokens.renew(generation, self.stub, time_left(why))
        token, _ = await self.tokens.current(self.stub, left())
        return await send(_with_token(details, token, time_left(f"{why}, authenticated again")))

    async def stream(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token, _ = await self.tokens.current(self.stub, details.timeout)
        return _with_token(details, token, details.timeout)


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, auth: _ChannelAuth) -> None:
        self.auth = auth

    async def intercept_unary_unary(
            self,
            continuation: Callable[[grpc.aio.ClientCallDetails, _REQ],
                                   Awaitable[grpc.aio.UnaryUnaryCall[_REQ, _RESP]]],
            client_call_details: grpc.aio.ClientCallDetails, request: _REQ,
    ) -> _RESP | grpc.aio.UnaryUnaryCall[_REQ, _RESP]:
        if _method(client_call_details) == AUTHENTICATE:
            return await continuation(client_call_details, request)

        async def send(details: grpc.aio.ClientCallDetails) -> _RESP:
            call = await continuation(details, request)
            return await call

        response: _RESP = await self.auth.unary(send, client_call_details)
        return response


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, auth: _ChannelAuth) -> None:
        self.auth = auth

    async def intercept_unary_stream(
            self,
            continuation: Callable[[grpc.aio.ClientCallDetails, _REQ],
                                   Awaitable[grpc.aio.UnaryStreamCall[_REQ, _RESP]]],
            client_call_details: grpc.aio.ClientCallDetails, request: _REQ,
    ) -> AsyncIterator[_RESP] | grpc.aio.UnaryStreamCall[_REQ, _RESP]:
        return await continuation(await self.auth.stream(client_call_details), request)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, auth: _ChannelAuth) -> None:
        self.auth = auth

    async def intercept_stream_stream(
            self,
            continuation: Callable[[grpc.aio.ClientCallDetails,
                                    AsyncIterable[_REQ] | Iterable[_REQ]],
                                   Awaitable[grpc.aio.StreamStreamCall[_REQ, _RESP]]],
            client_call_details: grpc.aio.ClientCallDetails,
            request_iterator: AsyncIterable[_REQ] | Iterable[_REQ],
    ) -> AsyncIterator[_RESP] | grpc.aio.StreamStreamCall[_REQ, _RESP]:
        return await continuation(await self.auth.stream(client_call_details),
                                  request_iterator)


def open_channel(target: str, credentials: grpc.ChannelCredentials | None = None,
                 tokens: Tokens | None = None) -> grpc.aio.Channel:
    """A channel to ``target`` (TLS with ``credentials``), acting as ``tokens``'s user when
    given (see the module docstring)."""
    interceptors: list[grpc.aio.ClientInterceptor] | None = None
    auth = None
    if tokens is not None:
        auth = _ChannelAuth(tokens)
        interceptors = [_UnaryUnary(auth), _UnaryStream(auth), _StreamStream(auth)]
    channel = (grpc.aio.insecure_channel(target, interceptors=interceptors)
               if credentials is None
               else grpc.aio.secure_channel(target, credentials, interceptors=interceptors))
    if auth is not None:
        auth.stub = rpc_pb2_grpc.AuthStub(channel)  # type: ignore[no-untyped-call]
    return channel
