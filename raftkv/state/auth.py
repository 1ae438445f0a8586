"""Users, roles, permissions, the enabled flag and the auth revision: replicated state.

The auth store follows etcd's (E:server/auth/store.go, 3.5/3.6 semantics): the same rules for
the root user and the root role, the same errors with etcd's exact messages
(:class:`raftkv.errors.AuthError`), and an auth revision that every change raises. It lives
in the state machine's backend next to the data, so it is written in the same batch as the
entry that changes it, carried in the same snapshot and rebuilt the same way::

    b"au" + name        -> codec(UserRecord)    password as a bcrypt hash, never in clear
    b"ar" + name        -> codec(RoleRecord)
    b"at" + sha256      -> codec(TokenRecord)   a simple token, by the hash of the token
    b"mauthenabled"     -> int64 0 | 1
    b"mauthrevision"    -> int64

:meth:`AuthStore.authorize` is the one check every request passes when auth is on: who
asks (``Request.user``, stamped by the member that resolved the token), whether the stamp is
current, and whether the request's footprint (:mod:`raftkv.state.authz`) is inside the
user's grants, or whether it needs root.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator

from raftkv import errors as e
from raftkv.errors import AuthError
from raftkv.state import codec, schema
from raftkv.state.authz import (
    Grant,
    Grants,
    Need,
    Perm,
    footprint,
    lease_keys_footprint,
    valid_permission_range,
)
from raftkv.state.backend import Backend, WriteBatch
from raftkv.state.commands import (
    AuthCommand,
    AuthDisable,
    AuthEnable,
    Command,
    Compact,
    DeleteRange,
    LeaseCheckpoint,
    LeaseGrant,
    LeaseRenew,
    LeaseRevoke,
    Permission,
    Put,
    Range,
    Request,
    RoleAdd,
    RoleDelete,
    RoleGrantPermission,
    RoleRecord,
    RoleRevokePermission,
    TokenIssue,
    TokenRecord,
    Txn,
    UserAdd,
    UserChangePassword,
    UserDelete,
    UserGrantRole,
    UserRecord,
    UserRevokeRole,
)

__all__ = ["ROOT", "TOKEN_MAX_AGE_MS", "AuthStore"]

ROOT = "root"
USER_PREFIX = b"au"
ROLE_PREFIX = b"ar"
TOKEN_PREFIX = b"at"
META_ENABLED = b"mauthenabled"
META_REVISION = b"mauthrevision"
TOKEN_MAX_AGE_MS = 24 * 3600 * 1000
"""A simple token's record is dropped this long after its issue (whatever its use), when a
later token is issued: a client then authenticates again."""

_ROOT_PERM = Permission(b"", b"\0", 2)


def _fail(message: str) -> AuthError:
    return AuthError(message)


class AuthStore:
    """The auth state over the state machine's backend (see the module docstring).

    Every mutation takes the entry's :class:`WriteBatch`; the in-memory view changes with
    it and is rebuilt from the backend by :meth:`reload` (a failed entry, a restore)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.enabled = False
        self.revision = 0
        self.users: dict[str, UserRecord] = {}
        self.roles: dict[str, RoleRecord] = {}
        self.tokens: dict[bytes, TokenRecord] = {}
        self._grants: dict[str, Grants] = {}
        self.reload()

    # ------------------------------------------------------------------ reading

    def reload(self) -> None:
        b = self._backend
        self.users = {r.name: r for r in self._scan(USER_PREFIX, UserRecord)
                      if isinstance(r, UserRecord)}
        self.roles = {r.name: r for r in self._scan(ROLE_PREFIX, RoleRecord)
                      if isinstance(r, RoleRecord)}
        self.tokens = {k[len(TOKEN_PREFIX):]: codec.decode(v, TokenRecord)
                       for k, v in b.scan(TOKEN_PREFIX, schema.next_prefix(b"a"))
                       if k.startswith(TOKEN_PREFIX)}
        raw = b.get(META_ENABLED)
        self.enabled = raw is not None and schema.decode_i64(raw) == 1
        raw = b.get(META_REVISION)
        self.revision = 0 if raw is None else schema.decode_i64(raw)
        self._grants = {}

    def _scan(self, prefix: bytes, kind: type[UserRecord] | type[RoleRecord]
              ) -> Iterator[UserRecord | RoleRecord]:
        for key, value in self._backend.scan(prefix, schema.next_prefix(b"a")):
            if key.startswith(prefix):
                yield codec.decode(value, kind)

    def user(self, name: str) -> UserRecord:
        """Raises: AuthError ``user name not found``."""
        found = self.users.get(name)
        if found is None:
            raise _fail(e.AUTH_USER_NOT_FOUND)
        return found

    def role(self, name: str) -> RoleRecord:
        """Raises: AuthError ``role name not found``."""
        found = self.roles.get(name)
        if found is None:
            raise _fail(e.AUTH_ROLE_NOT_FOUND)
        return found

    def role_perms(self, name: str) -> tuple[Permission, ...]:
        """``RoleGet``: the root role reads as one permission over every key (etcd)."""
        role = self.role(name)
        return (_ROOT_PERM,) if name == ROOT else role.perms

    def is_root(self, user: str) -> bool:
        found = self.users.get(user)
        return found is not None and ROOT in found.roles

    def grants(self, user: str) -> Grants:
        """The user's permissions over all its roles (cached until the next change)."""
        cached = self._grants.get(user)
        if cached is None:
            found = self.users.get(user)
            roles = found.roles if found is not None else ()
            perms = [Grant(p.key, p.range_end, Perm.from_pb(p.perm))
                     for r in roles if r in self.roles for p in self.roles[r].perms]
            cached = self._grants[user] = Grants(perms, root=ROOT in roles)
        return cached

    def token(self, token_hash: bytes) -> TokenRecord | None:
        """The live record of a simple token (its user exists, same generation), or None."""
        rec = self.tokens.get(token_hash)
        if rec is None:
            return None
        found = self.users.get(rec.user)
        if found is None or found.generation != rec.generation:
            return None
        return rec

    # ------------------------------------------------------------------ checks

    def authorize(self, request: Request, lease_keys: Callable[[int], Iterable[bytes]]) -> None:
        """Raise :class:`AuthError` unless ``request`` may run now (auth on)."""
        if not self.enabled or request.internal:
            return
        op = request.op
        if isinstance(op, LeaseCheckpoint | TokenIssue):
            raise _fail(e.AUTH_PERMISSION_DENIED)  # the members' own
        if not request.user:
            raise _fail(e.AUTH_USER_EMPTY)
        if request.auth_revision < self.revision:
            raise _fail(e.AUTH_OLD_REVISION)
        if request.user not in self.users:
            raise _fail(e.AUTH_PERMISSION_DENIED)
        self.check(request.user, op, lease_keys)

    def check(self, user: str, op: Command, lease_keys: Callable[[int], Iterable[bytes]]
              ) -> None:
        """Raise ``permission denied`` unless ``user`` may run ``op`` (a read served
        without the log is checked with this too)."""
        if isinstance(op, Range | Put | DeleteRange | Txn):
            if not self.grants(user).allows_op(op, lease_keys):
                raise _fail(e.AUTH_PERMISSION_DENIED)
            return
        needs = needs_of(op, lease_keys)
        if needs is None:
            if not self.is_root(user):
                raise _fail(e.AUTH_PERMISSION_DENIED)
            return
        if not self.grants(user).allows_all(needs):
            raise _fail(e.AUTH_PERMISSION_DENIED)

    # ------------------------------------------------------------------ applying

    def apply(self, batch: WriteBatch, op: AuthCommand) -> int:
        """Apply one auth command; the auth revision after it.

        Raises:
            AuthError: etcd's error for the command (nothing changed).
        """
        before = self.revision
        handler = _HANDLERS[type(op)]
        handler(self, batch, op)
        if self.revision != before:
            batch.put(META_REVISION, schema.encode_i64(self.revision))
        self._grants = {}
        return self.revision

    def _bump(self) -> None:
        self.revision += 1

    def _put_user(self, batch: WriteBatch, user: UserRecord) -> None:
        self.users[user.name] = user
        batch.put(USER_PREFIX + user.name.encode(), codec.encode(user))

    def _put_role(self, batch: WriteBatch, role: RoleRecord) -> None:
        self.roles[role.name] = role
        batch.put(ROLE_PREFIX + role.name.encode(), codec.encode(role))

    def _drop_tokens(self, batch: WriteBatch, keep: Callable[[TokenRecord], bool]) -> None:
        for h, rec in list(self.tokens.items()):
            if not keep(rec):
                del self.tokens[h]
                batch.delete(TOKEN_PREFIX + h)

    def _enable(self, batch: WriteBatch, op: AuthEnable) -> None:
        if self.enabled:
            return
        root = self.users.get(ROOT)
        if root is None:
            raise _fail(e.AUTH_ROOT_USER_NOT_EXIST)
        if ROOT not in root.roles:
            raise _fail(e.AUTH_ROOT_ROLE_NOT_EXIST)
        self.enabled = True
        batch.put(META_ENABLED, schema.encode_i64(1))
        self._bump()

    def _disable(self, batch: WriteBatch, op: AuthDisable) -> None:
        if not self.enabled:
            return
        self.enabled = False
        batch.put(META_ENABLED, schema.encode_i64(0))
        self._drop_tokens(batch, lambda _: False)  # etcd: disabling drops every token
        self._bump()

    def _user_add(self, batch: WriteBatch, op: UserAdd) -> None:
        if not op.name:
            raise _fail(e.AUTH_USER_EMPTY)
        if op.name in self.users:
            raise _fail(e.AUTH_USER_ALREADY_EXIST)
        self._put_user(batch, UserRecord(op.name, op.password_hash, (), op.no_password))
        self._bump()

    def _user_delete(self, batch: WriteBatch, op: UserDelete) -> None:
        if self.enabled and op.name == ROOT:
            raise _fail(e.AUTH_INVALID_MGMT)
        self.user(op.name)
        del self.users[op.name]
        batch.delete(USER_PREFIX + op.name.encode())
        self._drop_tokens(batch, lambda rec: rec.user != op.name)
        self._bump()

    def _user_password(self, batch: WriteBatch, op: UserChangePassword) -> None:
        old = self.user(op.name)
        self._put_user(batch, UserRecord(old.name, op.password_hash, old.roles, False,
                                         old.generation + 1))
        self._drop_tokens(batch, lambda rec: rec.user != op.name)
        self._bump()

    def _grant_role(self, batch: WriteBatch, op: UserGrantRole) -> None:
        old = self.user(op.user)
        if op.role != ROOT:
            self.role(op.role)
        if op.role in old.roles:
            return  # etcd: already granted, ignored
        roles = list(old.roles)
        bisect.insort(roles, op.role)
        self._put_user(batch, UserRecord(old.name, old.password_hash, tuple(roles),
                                         old.no_password, old.generation))
        self._bump()

    def _revoke_role(self, batch: WriteBatch, op: UserRevokeRole) -> None:
        if self.enabled and op.name == ROOT and op.role == ROOT:
            raise _fail(e.AUTH_INVALID_MGMT)
        old = self.user(op.name)
        if op.role not in old.roles:
            raise _fail(e.AUTH_ROLE_NOT_GRANTED)
        self._put_user(batch, UserRecord(old.name, old.password_hash,
                                         tuple(r for r in old.roles if r != op.role),
                                         old.no_password, old.generation))
        self._bump()

    def _role_add(self, batch: WriteBatch, op: RoleAdd) -> None:
        if not op.name:
            raise _fail(e.AUTH_ROLE_EMPTY)
        if op.name in self.roles:
            raise _fail(e.AUTH_ROLE_ALREADY_EXIST)
        self._put_role(batch, RoleRecord(op.name))
        self._bump()

    def _role_delete(self, batch: WriteBatch, op: RoleDelete) -> None:
        if self.enabled and op.role == ROOT:
            raise _fail(e.AUTH_INVALID_MGMT)
        self.role(op.role)
        del self.roles[op.role]
        batch.delete(ROLE_PREFIX + op.role.encode())
        for user in list(self.users.values()):
            if op.role in user.roles:
                self._put_user(batch, UserRecord(user.name, user.password_hash,
                                                 tuple(r for r in user.roles if r != op.role),
                                                 user.no_password, user.generation))
        self._bump()

    def _grant_perm(self, batch: WriteBatch, op: RoleGrantPermission) -> None:
        old = self.role(op.name)
        perm = op.perm
        if perm is None:
            raise _fail(e.AUTH_PERMISSION_NOT_GIVEN)
        if not valid_permission_range(perm.key, perm.range_end) or perm.perm not in (0, 1, 2):
            raise _fail(e.AUTH_INVALID_MGMT)
        perms = {(p.key, p.range_end): p for p in old.perms}
        perms[(perm.key, perm.range_end)] = perm  # the same range again: its type changes
        self._put_role(batch, RoleRecord(old.name, tuple(perms[k] for k in sorted(perms))))
        self._bump()

    def _revoke_perm(self, batch: WriteBatch, op: RoleRevokePermission) -> None:
        old = self.role(op.role)
        kept = tuple(p for p in old.perms if (p.key, p.range_end) != (op.key, op.range_end))
        if len(kept) == len(old.perms):
            raise _fail(e.AUTH_PERMISSION_NOT_GRANTED)
        self._put_role(batch, RoleRecord(old.name, kept))
        self._bump()

    def _token_issue(self, batch: WriteBatch, op: TokenIssue) -> None:
        found = self.users.get(op.user)
        if found is None:
            raise _fail(e.AUTH_FAILED)
        self._drop_tokens(batch, lambda rec: rec.issued_ms > op.now_ms - TOKEN_MAX_AGE_MS)
        rec = TokenRecord(op.user, found.generation, op.now_ms)
        self.tokens[op.token_hash] = rec
        batch.put(TOKEN_PREFIX + op.token_hash, codec.encode(rec))


_HANDLERS: dict[type, Callable[[AuthStore, WriteBatch, object], None]] = {
    AuthEnable: AuthStore._enable,  # type: ignore[dict-item]
    AuthDisable: AuthStore._disable,  # type: ignore[dict-item]
    UserAdd: AuthStore._user_add,  # type: ignore[dict-item]
    UserDelete: AuthStore._user_delete,  # type: ignore[dict-item]
    UserChangePassword: AuthStore._user_password,  # type: ignore[dict-item]
    UserGrantRole: AuthStore._grant_role,  # type: ignore[dict-item]
    UserRevokeRole: AuthStore._revoke_role,  # type: ignore[dict-item]
    RoleAdd: AuthStore._role_add,  # type: ignore[dict-item]
    RoleDelete: AuthStore._role_delete,  # type: ignore[dict-item]
    RoleGrantPermission: AuthStore._grant_perm,  # type: ignore[dict-item]
    RoleRevokePermission: AuthStore._revoke_perm,  # type: ignore[dict-item]
    TokenIssue: AuthStore._token_issue,  # type: ignore[dict-item]
}
AUTH_COMMANDS = tuple(_HANDLERS)


def needs_of(op: Command, lease_keys: Callable[[int], Iterable[bytes]]
             ) -> tuple[Need, ...] | None:
    """What ``op`` touches (its footprint), or None when it needs root. Every command type
    has a rule here; a type without one needs root (default deny)."""
    if isinstance(op, Range | Put | DeleteRange | Txn):
        return footprint(op, lease_keys)
    if isinstance(op, LeaseGrant):
        return ()  # any authenticated user
    if isinstance(op, LeaseRevoke | LeaseRenew):
        return lease_keys_footprint(lease_keys(op.id), Perm.WRITE)
    if isinstance(op, Compact):
        return None
    return None  # auth changes, and anything without a rule
