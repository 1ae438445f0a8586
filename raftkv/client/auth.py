"""Authentication: etcd's ``Auth`` API on :class:`raftkv.client.Client`, its results and its
typed errors.

Users, roles and permissions are managed with the methods of :class:`AuthMixin`
(``user_add``, ``role_grant_permission``, ``auth_enable``, ...). A client made with
``username`` and ``password`` authenticates itself (see :class:`raftkv.client.Client`).

The errors are :class:`raftkv.errors.AuthError` (a :class:`~raftkv.errors.PermissionDeniedError`)
subclasses named after etcd's ``rpctypes`` errors; each carries etcd's exact message.
``etcdserver: permission denied`` stays a plain :class:`~raftkv.errors.PermissionDeniedError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raftkv.client.types import Header, KeyLike, prefix_end, to_bytes
from raftkv.errors import AuthError, InvalidRequestError
from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2

__all__ = [
    "AuthFailedError", "AuthMixin", "AuthNotEnabledError", "AuthOldRevisionError",
    "AuthStatus", "InvalidAuthRequestError", "InvalidAuthTokenError", "Permission",
    "PermissionNotGrantedError", "Role", "RoleExistsError", "RoleNotFoundError",
    "RoleNotGrantedError", "RootRoleMissingError", "User", "UserEmptyError",
    "UserExistsError", "UserNotFoundError", "perm_range",
]

_ANY: Any = None


# -- errors ---------------------------------------------------------------------------------

class AuthFailedError(AuthError):
    """Wrong user name or password (``authentication failed, invalid user ID or password``),
    or a password given for a user that has none."""


class AuthNotEnabledError(AuthError):
    """``authentication is not enabled`` (Authenticate while auth is off)."""


class InvalidAuthTokenError(AuthError):
    """``invalid auth token``: the token expired or was invalidated (a password change, a
    deleted user). A client with credentials re-authenticates by itself."""


class AuthOldRevisionError(AuthError, InvalidRequestError):
    """``revision of auth store is old``: the auth store changed while the request was in
    flight. A client with credentials re-authenticates and retries by itself."""


class UserEmptyError(AuthError):
    """``user name is empty``: auth is on and the request carried no user (no token, no
    client certificate). Give the client ``username`` and ``password``."""


class UserNotFoundError(AuthError):
    """``user name not found``."""


class UserExistsError(AuthError):
    """``user name already exists``."""


class RoleNotFoundError(AuthError):
    """``role name not found``."""


class RoleExistsError(AuthError):
    """``role name already exists``."""


class RoleNotGrantedError(AuthError):
    """``role is not granted to the user`` (revoking a role the user does not have)."""


class PermissionNotGrantedError(AuthError):
    """``permission is not granted to the role`` (revoking a permission it does not have)."""


class RootRoleMissingError(AuthError):
    """Auth cannot be enabled: ``root user does not exist`` or ``root user does not have
    root role``."""


class InvalidAuthRequestError(AuthError, InvalidRequestError):
    """A malformed auth request: ``role name is empty``, ``permission not given``,
    ``invalid auth management``."""


# -- results --------------------------------------------------------------------------------

_PERM_NAMES = {auth_pb2.Permission.READ: "read", auth_pb2.Permission.WRITE: "write",
               auth_pb2.Permission.READWRITE: "readwrite"}
_PERM_TYPES = set(_PERM_NAMES.values())


@dataclass(frozen=True, slots=True)
class Permission:
    """A role's permission on a key (``range_end`` empty), a range ``[key, range_end)`` or,
    with ``range_end == b"\\0"``, every key from ``key`` on. ``perm`` is ``"read"``,
    ``"write"`` or ``"readwrite"``."""

    key: bytes
    range_end: bytes
    perm: str

    @property
    def is_prefix(self) -> bool:
        """The range is exactly the keys starting with :attr:`key`."""
        return bool(self.range_end) and prefix_end(self.key) == self.range_end

    @classmethod
    def from_pb(cls, p: auth_pb2.Permission) -> Permission:
        return cls(p.key, p.range_end, _PERM_NAMES.get(p.permType, str(p.permType)))


@dataclass(frozen=True, slots=True)
class User:
    """``user_get``: a user's roles."""

    name: str
    roles: tuple[str, ...]
    header: Header


@dataclass(frozen=True, slots=True)
class Role:
    """``role_get``: a role's permissions, in the server's order (by key)."""

    name: str
    permissions: tuple[Permission, ...]
    header: Header


@dataclass(frozen=True, slots=True)
class AuthStatus:
    """``auth_status``: whether auth is on, and the auth store's revision (it grows with
    every change of users, roles or permissions)."""

    enabled: bool
    auth_revision: int
    header: Header


def perm_type(perm: str) -> str:
    """``read`` / ``write`` / ``readwrite`` (any case) as an ``authpb.Permission.Type``
    name."""
    if perm.lower() not in _PERM_TYPES:
        raise ValueError(f"invalid permission type {perm!r}: use read, write or readwrite")
    return perm.upper()


def perm_range(key: KeyLike, range_end: KeyLike = b"", *, prefix: bool = False,
               from_key: bool = False) -> tuple[bytes, bytes]:
    """The ``(key, range_end)`` of a permission, as etcdctl computes it: an empty key is
    ``b"\\0"`` (with ``prefix`` or ``from_key``: every key); ``prefix`` ends at the prefix's
    end; ``from_key`` is open ended (``b"\\0"``)."""
    k, end = to_bytes(key), to_bytes(range_end, "range_end")
    if prefix and from_key:
        raise ValueError("prefix and from_key are mutually exclusive")
    if end and (prefix or from_key):
        raise ValueError("give range_end, or prefix / from_key, not both")
    if not k:
        return b"\0", b"\0" if prefix or from_key else b""
    if prefix:
        return k, prefix_end(k)
    if from_key:
        return k, b"\0"
    return k, end


# -- the API --------------------------------------------------------------------------------

class AuthMixin:
    """etcd's ``Auth`` service (17 RPCs; ``Authenticate`` is the client's own business).

    Reads (``auth_status``, ``user_get``, ``user_list``, ``role_get``, ``role_list``) and
    idempotent changes (``auth_enable``, ``auth_disable``, ``user_change_password``,
    ``user_grant_role``, ``role_grant_permission``) are retried like reads; the others are
    not retried after they may have reached the server (the server does not de-duplicate
    auth changes), so an ambiguous failure raises
    :class:`~raftkv.errors.OutcomeUnknownError`.
    """

    async def _call(self, service: str, method: str, request: Any, *, write: bool = False,
                    timeout: float | None = _ANY, blocking: bool = False,
                    pinning: bool = False, dedup: bool = True) -> Any:
        raise NotImplementedError

    def _own_password_changed(self, name: str, password: str) -> None:
        raise NotImplementedError

    async def _auth(self, method: str, request: Any, *, once: bool = False) -> Any:
        """One Auth RPC; ``once``: not idempotent (never repeated after it may have been
        sent)."""
        return await self._call("auth", method, request, write=once, dedup=False)

    async def _auth_header(self, method: str, request: Any, *, once: bool = False) -> Header:
        return Header.from_pb((await self._auth(method, request, once=once)).header)

    # -- the switch
    async def auth_enable(self) -> Header:
        """Turn authentication on. The ``root`` user must exist and have the ``root`` role
        (else :class:`RootRoleMissingError`)."""
        return await self._auth_header("AuthEnable", rpc_pb2.AuthEnableRequest())

    async def auth_disable(self) -> Header:
        """Turn authentication off (root only)."""
        return await self._auth_header("AuthDisable", rpc_pb2.AuthDisableRequest())

    async def auth_status(self) -> AuthStatus:
        """Whether auth is on, and the auth store's revision (anyone may ask)."""
        r = await self._auth("AuthStatus", rpc_pb2.AuthStatusRequest())
        return AuthStatus(r.enabled, r.authRevision, Header.from_pb(r.header))

    # -- users
    async def user_add(self, name: str, password: str | None = None, *,
                       no_password: bool = False) -> Header:
        """Add a user with ``password`` (hashed by the server), or with ``no_password=True``
        one that authenticates by client certificate only."""
        if password is None and not no_password:
            raise ValueError("user_add: give a password, or no_password=True")
        req = rpc_pb2.AuthUserAddRequest(
            name=name, password="" if no_password else password or "",
            options=auth_pb2.UserAddOptions(no_password=no_password))
        return await self._auth_header("UserAdd", req, once=True)

    async def user_get(self, name: str) -> User:
        """A user's roles (root, or the user itself)."""
        r = await self._auth("UserGet", rpc_pb2.AuthUserGetRequest(name=name))
        return User(name, tuple(r.roles), Header.from_pb(r.header))

    async def user_list(self) -> tuple[str, ...]:
        """Every user name, sorted."""
        return tuple((await self._auth("UserList", rpc_pb2.AuthUserListRequest())).users)

    async def user_delete(self, name: str) -> Header:
        """Delete a user (its tokens stop working)."""
        return await self._auth_header("UserDelete", rpc_pb2.AuthUserDeleteRequest(name=name),
                                       once=True)

    async def user_change_password(self, name: str, password: str) -> Header:
        """Set a user's password; its tokens stop working. If it is this client's own user,
        the client re-authenticates with the new password from now on."""
        req = rpc_pb2.AuthUserChangePasswordRequest(name=name, password=password)
        header = await self._auth_header("UserChangePassword", req)
        self._own_password_changed(name, password)
        return header

    async def user_grant_role(self, name: str, role: str) -> Header:
        """Give ``role`` to user ``name``."""
        req = rpc_pb2.AuthUserGrantRoleRequest(user=name, role=role)
        return await self._auth_header("UserGrantRole", req)

    async def user_revoke_role(self, name: str, role: str) -> Header:
        """Take ``role`` from user ``name``."""
        req = rpc_pb2.AuthUserRevokeRoleRequest(name=name, role=role)
        return await self._auth_header("UserRevokeRole", req, once=True)

    # -- roles
    async def role_add(self, name: str) -> Header:
        """Add a role (no permissions yet)."""
        return await self._auth_header("RoleAdd", rpc_pb2.AuthRoleAddRequest(name=name),
                                       once=True)

    async def role_get(self, name: str) -> Role:
        """A role's permissions (root, or a user holding the role)."""
        r = await self._auth("RoleGet", rpc_pb2.AuthRoleGetRequest(role=name))
        return Role(name, tuple(Permission.from_pb(p) for p in r.perm),
                    Header.from_pb(r.header))

    async def role_list(self) -> tuple[str, ...]:
        """Every role name, sorted."""
        return tuple((await self._auth("RoleList", rpc_pb2.AuthRoleListRequest())).roles)

    async def role_delete(self, name: str) -> Header:
        """Delete a role (users holding it lose it)."""
        return await self._auth_header("RoleDelete", rpc_pb2.AuthRoleDeleteRequest(role=name),
                                       once=True)

    async def role_grant_permission(self, name: str, key: KeyLike, range_end: KeyLike = b"",
                                    perm: str = "readwrite", *, prefix: bool = False,
                                    from_key: bool = False) -> Header:
        """Let role ``name`` ``perm`` (``"read"``, ``"write"``, ``"readwrite"``) a key, the
        range ``[key, range_end)``, a ``prefix``, or every key from ``key`` on
        (``from_key``); an empty key with ``prefix`` (or ``from_key``) is every key."""
        k, end = perm_range(key, range_end, prefix=prefix, from_key=from_key)
        req = rpc_pb2.AuthRoleGrantPermissionRequest(
            name=name, perm=auth_pb2.Permission(permType=perm_type(perm), key=k, range_end=end))
        return await self._auth_header("RoleGrantPermission", req)

    async def role_revoke_permission(self, name: str, key: KeyLike, range_end: KeyLike = b"",
                                     *, prefix: bool = False, from_key: bool = False) -> Header:
        """Remove the permission of role ``name`` on exactly that key or range (as granted)."""
        k, end = perm_range(key, range_end, prefix=prefix, from_key=from_key)
        req = rpc_pb2.AuthRoleRevokePermissionRequest(role=name, key=k, range_end=end)
        return await self._auth_header("RoleRevokePermission", req, once=True)

