"""Authentication on the client port: who asks, and whether the RPC has a rule that lets
them ask at all. What a request may touch is decided by the state machine's one check
(:meth:`raftkv.state.auth.AuthStore.authorize` at apply time, :meth:`Gate.check` for the
reads that do not go through the log); this module resolves the caller and stamps it.

* **Who**: the token in the ``token`` metadata (or ``authorization``, with or without
  ``Bearer ``), else, with ``--client-cert-auth``, the CN of the verified client
  certificate (the TLS front knows it). When auth is off, tokens are ignored (etcd).
* **Simple tokens** (``--auth-token simple``): 16 random letters, a dot and the applied
  index after the token's entry (etcd's shape). The member that checked the password
  proposes the SHA-256 of the letters (never the token) with the user's password
  generation, so every member accepts the token as soon as it has applied that index — a
  member behind waits for it instead of answering "invalid auth token"
  (etcd-io/etcd#18437) — and a password change or a delete makes that user's tokens (and
  only them) invalid. The TTL (``--auth-token-ttl``, 300 s) slides with use, per member,
  as etcd's does.
* **Rules**: every method of the client port is in :data:`RULES` as ``public`` (no caller
  needed), ``user`` (a caller needed; the state machine checks the keys), ``root``, or
  ``deferred`` (the caller is resolved and the handler refuses as etcd does: a watch create
  is canceled with the reason, a lock or election call fails as etcd's client recipes
  do). With auth on, a method without a rule is refused (default deny).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import secrets
import string
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from raftkv import errors as e
from raftkv.errors import AuthError
from raftkv.server.audit import audit
from raftkv.server.auth_context import PRINCIPAL, Principal
from raftkv.state.auth import ROOT
from raftkv.state.commands import Command
from raftkv.wire.status import to_status

__all__ = ["PRINCIPAL", "RULES", "Gate", "Principal", "Tokens", "caller_has_role", "check_needs",
           "check_read", "is_caller", "require_root"]

log = logging.getLogger("raftkv.server.auth")

DEFAULT_TTL_S = 300


_PUBLIC, _USER, _ROOT, _DEFERRED = "public", "user", "root", "deferred"
RULES: dict[str, str] = {
    **{f"/etcdserverpb.KV/{m}": _USER for m in ("Range", "Put", "DeleteRange", "Txn")},
    "/etcdserverpb.KV/Compact": _ROOT,
    "/etcdserverpb.Watch/Watch": _DEFERRED,  # opened for anyone; each create is checked
    **{f"/etcdserverpb.Lease/{m}": _USER for m in ("LeaseGrant", "LeaseRevoke",
                                                   "LeaseKeepAlive", "LeaseTimeToLive",
                                                   "LeaseLeases")},
    "/etcdserverpb.Cluster/MemberList": _USER,
    **{f"/etcdserverpb.Cluster/{m}": _ROOT for m in ("MemberAdd", "MemberRemove",
                                                     "MemberUpdate", "MemberPromote")},
    "/etcdserverpb.Maintenance/Status": _USER,
    "/etcdserverpb.Maintenance/Alarm": _USER,  # ACTIVATE/DEACTIVATE: root, in the service
    **{f"/etcdserverpb.Maintenance/{m}": _ROOT for m in ("Defragment", "Hash", "HashKV",
                                                         "Snapshot", "MoveLeader",
                                                         "Downgrade")},
    "/etcdserverpb.Auth/Authenticate": _PUBLIC,
    "/etcdserverpb.Auth/AuthStatus": _PUBLIC,
    "/etcdserverpb.Auth/UserGet": _USER,  # self or root, in the service
    "/etcdserverpb.Auth/RoleGet": _USER,  # a role of one's own or root, in the service
    **{f"/etcdserverpb.Auth/{m}": _ROOT for m in (
        "AuthEnable", "AuthDisable", "UserAdd", "UserList", "UserDelete",
        "UserChangePassword", "UserGrantRole", "UserRevokeRole", "RoleAdd", "RoleList",
        "RoleDelete", "RoleGrantPermission", "RoleRevokePermission")},
    # the recipes run as the caller and refuse as etcd's client does (UNKNOWN + message)
    **{f"/v3lockpb.Lock/{m}": _DEFERRED for m in ("Lock", "Unlock")},
    **{f"/v3electionpb.Election/{m}": _DEFERRED for m in ("Campaign", "Proclaim", "Leader",
                                                          "Observe", "Resign")},
    "/grpc.health.v1.Health/Check": _PUBLIC,
    "/grpc.health.v1.Health/Watch": _PUBLIC,
}


def token_hash(token: str) -> bytes:
    """The SHA-256 of a token's secret part (before the ``.index`` hint)."""
    secret = token.rpartition(".")[0] or token
    return hashlib.sha256(secret.encode()).digest()


class Tokens:
    """Simple tokens on this member (see the module docstring)."""

    def __init__(self, store: Callable[[], Any], applied: Callable[[], int],
                 wait_applied: Callable[[int], Awaitable[None]], ttl_s: int = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._applied = applied
        self._wait_applied = wait_applied
        self.ttl_s = ttl_s
        self._clock = clock
        self._last_use: dict[bytes, float] = {}

    @staticmethod
    def new() -> str:
        """A token's secret part: 16 random letters (etcd's simple token has 16)."""
        return "".join(secrets.choice(string.ascii_letters) for _ in range(16))

    async def resolve(self, token: str) -> str:
        """The user of a live token. Raises: AuthError ``invalid auth token``."""
        h = token_hash(token)
        rec = self._store().token(h)
        if rec is None:
            index = _index_of(token)
            if index <= self._applied():
                raise AuthError(e.AUTH_INVALID_TOKEN)
            try:  # issued by a member ahead of this one: wait until it is applied here
                await asyncio.wait_for(self._wait_applied(index), 5.0)
            except TimeoutError:
                raise AuthError(e.AUTH_INVALID_TOKEN) from None
            rec = self._store().token(h)
            if rec is None:
                raise AuthError(e.AUTH_INVALID_TOKEN)
        now = self._clock()
        last = self._last_use.get(h, rec.issued_ms / 1000.0)
        if now - last > self.ttl_s:
            self._last_use.pop(h, None)
            raise AuthError(e.AUTH_INVALID_TOKEN)
        self._last_use[h] = now
        if len(self._last_use) > 100_000:  # forget the idle ones
            cutoff = now - self.ttl_s
            self._last_use = {k: t for k, t in self._last_use.items() if t >= cutoff}
        return str(rec.user)


def _index_of(token: str) -> int:
    _, _, tail = token.rpartition(".")
    return int(tail) if tail.isdigit() and len(tail) < 19 else 0


def token_of(metadata: Any) -> str | None:
    """The token in gRPC metadata (``token``, or ``authorization`` with or without
    ``Bearer ``), or None."""
    found = None
    for key, value in metadata or ():
        if key == "token":
            return str(value)
        if key == "authorization":
            text = str(value)
            found = text[7:] if text[:7].lower() == "bearer " else text
    return found


class Gate:
    """The client port's authentication (see the module docstring): :meth:`guard` wraps
    every servicer method with it."""

    def __init__(self, store: Callable[[], Any], tokens: Tokens,
                 cn_of: Callable[[str], str | None] | None = None) -> None:
        self._store = store
        self.tokens = tokens
        self._cn_of = cn_of

    @property
    def enabled(self) -> bool:
        return bool(self._store().enabled)

    async def resolve(self, metadata: Any, peer: str) -> Principal:
        """The caller. Raises: AuthError ``invalid auth token``."""
        store = self._store()
        token = token_of(metadata)
        if token is not None:
            return Principal(await self.tokens.resolve(token), store.revision)
        if self._cn_of is not None:
            cn = self._cn_of(peer)
            if cn:
                return Principal(cn, store.revision)
        return Principal("", store.revision)

    def require(self, rule: str, p: Principal) -> None:
        """Raise unless ``p`` passes ``rule``."""
        if rule == _PUBLIC:
            return
        if not p.user:
            raise AuthError(e.AUTH_USER_EMPTY)
        store = self._store()
        if rule == _ROOT:
            if p.user not in store.users:
                raise AuthError(e.AUTH_USER_NOT_FOUND)  # etcd's IsAdminPermitted
            if not store.is_root(p.user):
                raise AuthError(e.AUTH_PERMISSION_DENIED)

    def guard(self, add: Callable[..., Any], servicer: object) -> object:
        """``servicer`` with every RPC method wrapped by this gate, for the generated
        ``add``\\ ``_XServicer_to_server`` function to register (once, at start: no gRPC
        interceptor, whose per-call pipeline costs more than the check itself). The method
        path is ``/<package>.<Service>/<Method>``, as in :data:`RULES`."""
        package = add.__module__.rsplit(".", 2)[-2]
        service = add.__name__.removeprefix("add_").removesuffix("Servicer_to_server")
        wrapped = types.SimpleNamespace()
        for name in dir(type(servicer)):
            attr = getattr(servicer, name)
            if name.startswith("_") or not callable(attr):
                continue
            rule = RULES.get(f"/{package}.{service}/{name}")
            if inspect.isasyncgenfunction(attr):
                setattr(wrapped, name, _gen_wrapper(attr, self, rule))
            elif inspect.iscoroutinefunction(attr):
                setattr(wrapped, name, _coro_wrapper(attr, self, rule))
            else:  # a generated base's "unimplemented" stub: the rule first, then that
                setattr(wrapped, name, _unimplemented(self, rule))
        return wrapped


def _caller(store: Any) -> str:
    p = PRINCIPAL.get()
    if p is not None and p.error:
        raise AuthError(p.error)
    if p is None or not p.user:
        raise AuthError(e.AUTH_USER_EMPTY)
    return p.user


def check_read(sm: Any, op: Command) -> None:
    """A read served without the log (a Range or read-only Txn after its barrier): the
    caller may run ``op`` now, by the same check as at apply, against the auth state of
    this moment (after the barrier, so a revoke applied before the read counts).
    Raises AuthError."""
    store = sm.auth
    if not store.enabled:
        return
    user = _caller(store)
    if user not in store.users:
        raise AuthError(e.AUTH_PERMISSION_DENIED)
    store.check(user, op, sm.lease_keys)


def check_needs(sm: Any, needs: Any) -> None:
    """Like :func:`check_read` for a footprint the caller built (lease keys, say)."""
    store = sm.auth
    if not store.enabled:
        return
    user = _caller(store)
    if user not in store.users or not store.grants(user).allows_all(needs):
        raise AuthError(e.AUTH_PERMISSION_DENIED)


def require_root(sm: Any) -> None:
    """For the parts of a ``user`` method that need root (Alarm ACTIVATE, ...)."""
    store = sm.auth
    if not store.enabled:
        return
    p = PRINCIPAL.get()
    if p is None or not p.user:
        raise AuthError(e.AUTH_USER_EMPTY)
    if not store.is_root(p.user):
        raise AuthError(e.AUTH_PERMISSION_DENIED)


def is_caller(sm: Any, user: str) -> bool:
    """Auth off, root, or ``user`` itself (UserGet)."""
    store = sm.auth
    if not store.enabled:
        return True
    p = PRINCIPAL.get()
    return p is not None and (p.user == user or store.is_root(p.user))


def caller_has_role(sm: Any, role: str) -> bool:
    """Auth off, root, or a caller holding ``role`` (RoleGet)."""
    store = sm.auth
    if not store.enabled:
        return True
    p = PRINCIPAL.get()
    found = store.users.get(p.user) if p is not None else None
    return found is not None and (ROOT in found.roles or role in found.roles)


async def _enter(gate: Gate, rule: str | None, context: Any) -> bool:
    """Resolve and check the caller, set :data:`PRINCIPAL`; False if the call was aborted."""
    p = Principal("", 0)
    try:
        if rule is None:
            raise AuthError(e.AUTH_PERMISSION_DENIED)  # no rule: default deny
        if rule == _DEFERRED:  # resolved, refused later by the handler's own check (etcd)
            try:
                p = await gate.resolve(context.invocation_metadata(), context.peer())
            except AuthError as exc:
                p = Principal("", 0, str(exc))
            PRINCIPAL.set(p)
            return True
        if rule != _PUBLIC:
            p = await gate.resolve(context.invocation_metadata(), context.peer())
        gate.require(rule, p)
    except AuthError as exc:
        code, message = to_status(exc)
        audit("denied", user=p.user, error=message, peer=context.peer())
        await context.abort(code, message)
        return False
    PRINCIPAL.set(p)
    return True


def _unimplemented(gate: Gate, rule: str | None) -> Any:
    async def behavior(request: Any, context: Any) -> Any:
        if gate.enabled and not await _enter(gate, rule, context):
            return None
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
    return behavior


def _coro_wrapper(inner: Any, gate: Gate, rule: str | None) -> Any:
    async def behavior(request: Any, context: Any) -> Any:
        if gate.enabled and not await _enter(gate, rule, context):
            return None
        return await inner(request, context)
    return behavior


def _gen_wrapper(inner: Any, gate: Gate, rule: str | None) -> Any:
    async def behavior(request: Any, context: Any) -> AsyncIterator[Any]:
        if gate.enabled and not await _enter(gate, rule, context):
            return
        async for item in inner(request, context):
            yield item
    return behavior
