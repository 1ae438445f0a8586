"""etcd's ``Auth`` service: 17 RPCs over the replicated auth store (:mod:`raftkv.state.auth`).

Changes go through the log as auth commands; a password is hashed (bcrypt,
``--bcrypt-cost``) on this member before it is proposed, on a worker thread, and never kept:
not in the log, a snapshot, a log line or an error. Authenticate checks the password here,
outside the log (bcrypt is slow: etcd PR 11735), then proposes the new token's SHA-256.
Reads (UserGet, UserList, RoleGet, RoleList, AuthStatus) are served after a read barrier,
so they are linearizable like etcd's, which go through its log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import bcrypt
import grpc

from raftkv import errors as e
from raftkv.errors import AuthError
from raftkv.server.audit import audit
from raftkv.server.auth import Tokens, caller_has_role, is_caller, token_hash
from raftkv.server.auth_context import PRINCIPAL
from raftkv.server.node import NodeDriver
from raftkv.server.services.kv import Header, guarded
from raftkv.state.commands import (
    AuthDisable,
    AuthEnable,
    AuthResult,
    Command,
    ErrorResult,
    Permission,
    RoleAdd,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
    TokenIssue,
    UserAdd,
    UserChangePassword,
    UserDelete,
    UserGrantRole,
    UserRevokeRole,
)
from raftkv.state.machine import error_to_exception
from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

log = logging.getLogger("raftkv.server.auth")

Ctx = grpc.aio.ServicerContext[Any, Any]
DEFAULT_BCRYPT_COST = 10


def _target(op: Command) -> str:
    """The user or role an auth change is about (never a password or a hash)."""
    for attr in ("name", "user", "role"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return value
    return ""


class AuthService(rpc_pb2_grpc.AuthServicer):
    """The ``etcdserverpb.Auth`` servicer."""

    def __init__(self, driver: NodeDriver, header: Header, tokens: Tokens,
                 bcrypt_cost: int = DEFAULT_BCRYPT_COST) -> None:
        self.driver = driver
        self.header = header
        self.tokens = tokens
        self.cost = bcrypt_cost

    @property
    def store(self) -> Any:
        return self.driver.sm.auth

    async def _apply(self, op: Command, *, internal: bool = False) -> AuthResult:
        result = await self.driver.propose(op, internal=internal)
        if isinstance(result, ErrorResult):
            raise error_to_exception(result)
        assert isinstance(result, AuthResult)
        if not internal:
            p = PRINCIPAL.get()
            audit("auth", user=p.user if p is not None else "", op=type(op).__name__,
                  target=_target(op), auth_revision=result.auth_revision)
        return result

    async def _hash(self, password: str, hashed: str) -> bytes:
        if hashed:
            if not hashed.startswith("$2"):
                raise AuthError(e.AUTH_INVALID_MGMT)  # not a bcrypt hash
            return hashed.encode()
        return await asyncio.to_thread(bcrypt.hashpw, password.encode(),
                                       bcrypt.gensalt(self.cost))

    async def _read(self) -> Any:
        await self.driver.read_barrier()
        return self.store

    # ------------------------------------------------------------------ the switch

    async def AuthEnable(self, request: rpc_pb2.AuthEnableRequest, context: Ctx
                         ) -> rpc_pb2.AuthEnableResponse:
        async def run() -> rpc_pb2.AuthEnableResponse:
            r = await self._apply(AuthEnable())
            log.info("authentication enabled (auth revision %d)", r.auth_revision)
            return rpc_pb2.AuthEnableResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def AuthDisable(self, request: rpc_pb2.AuthDisableRequest, context: Ctx
                          ) -> rpc_pb2.AuthDisableResponse:
        async def run() -> rpc_pb2.AuthDisableResponse:
            r = await self._apply(AuthDisable())
            log.info("authentication disabled (auth revision %d)", r.auth_revision)
            return rpc_pb2.AuthDisableResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def AuthStatus(self, request: rpc_pb2.AuthStatusRequest, context: Ctx
                         ) -> rpc_pb2.AuthStatusResponse:
        async def run() -> rpc_pb2.AuthStatusResponse:
            store = await self._read()
            return rpc_pb2.AuthStatusResponse(header=self.header(), enabled=store.enabled,
                                              authRevision=store.revision)
        return await guarded(context, run)

    async def Authenticate(self, request: rpc_pb2.AuthenticateRequest, context: Ctx
                           ) -> rpc_pb2.AuthenticateResponse:
        async def run() -> rpc_pb2.AuthenticateResponse:
            store = await self._read()
            if not store.enabled:
                raise AuthError(e.AUTH_NOT_ENABLED)
            user = store.users.get(request.name)
            if user is not None and user.no_password:
                raise AuthError(e.AUTH_NO_PASSWORD_USER)
            ok = user is not None and await asyncio.to_thread(
                bcrypt.checkpw, request.password.encode(), user.password_hash)
            if not ok:  # a wrong password and an unknown user look the same
                log.warning("invalid authentication was requested (user %r)", request.name)
                audit("authentication failed", user=request.name, peer=context.peer())
                raise AuthError(e.AUTH_FAILED)
            secret = self.tokens.new()
            await self._apply(TokenIssue(request.name, token_hash(secret),
                                         int(time.time() * 1000)), internal=True)
            # the applied index is at or past the entry's: a member that has applied that
            # far knows the token
            token = f"{secret}.{self.driver.sm.applied_index}"
            return rpc_pb2.AuthenticateResponse(header=self.header(), token=token)
        return await guarded(context, run)

    # ------------------------------------------------------------------ users

    async def UserAdd(self, request: rpc_pb2.AuthUserAddRequest, context: Ctx
                      ) -> rpc_pb2.AuthUserAddResponse:
        async def run() -> rpc_pb2.AuthUserAddResponse:
            no_password = request.options.no_password
            hashed = b"" if no_password else await self._hash(request.password,
                                                               request.hashedPassword)
            r = await self._apply(UserAdd(request.name, hashed, no_password))
            return rpc_pb2.AuthUserAddResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def UserGet(self, request: rpc_pb2.AuthUserGetRequest, context: Ctx
                      ) -> rpc_pb2.AuthUserGetResponse:
        async def run() -> rpc_pb2.AuthUserGetResponse:
            store = await self._read()
            if not is_caller(self.driver.sm, request.name):
                raise AuthError(e.AUTH_PERMISSION_DENIED)
            user = store.user(request.name)
            return rpc_pb2.AuthUserGetResponse(header=self.header(), roles=user.roles)
        return await guarded(context, run)

    async def UserList(self, request: rpc_pb2.AuthUserListRequest, context: Ctx
                       ) -> rpc_pb2.AuthUserListResponse:
        async def run() -> rpc_pb2.AuthUserListResponse:
            store = await self._read()
            return rpc_pb2.AuthUserListResponse(header=self.header(),
                                                users=sorted(store.users))
        return await guarded(context, run)

    async def UserDelete(self, request: rpc_pb2.AuthUserDeleteRequest, context: Ctx
                         ) -> rpc_pb2.AuthUserDeleteResponse:
        async def run() -> rpc_pb2.AuthUserDeleteResponse:
            r = await self._apply(UserDelete(request.name))
            return rpc_pb2.AuthUserDeleteResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def UserChangePassword(self, request: rpc_pb2.AuthUserChangePasswordRequest,
                                 context: Ctx) -> rpc_pb2.AuthUserChangePasswordResponse:
        async def run() -> rpc_pb2.AuthUserChangePasswordResponse:
            self.store.user(request.name)  # etcd checks the user before hashing
            hashed = await self._hash(request.password, request.hashedPassword)
            r = await self._apply(UserChangePassword(request.name, hashed))
            return rpc_pb2.AuthUserChangePasswordResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def UserGrantRole(self, request: rpc_pb2.AuthUserGrantRoleRequest, context: Ctx
                            ) -> rpc_pb2.AuthUserGrantRoleResponse:
        async def run() -> rpc_pb2.AuthUserGrantRoleResponse:
            r = await self._apply(UserGrantRole(request.user, request.role))
            return rpc_pb2.AuthUserGrantRoleResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def UserRevokeRole(self, request: rpc_pb2.AuthUserRevokeRoleRequest, context: Ctx
                             ) -> rpc_pb2.AuthUserRevokeRoleResponse:
        async def run() -> rpc_pb2.AuthUserRevokeRoleResponse:
            r = await self._apply(UserRevokeRole(request.name, request.role))
            return rpc_pb2.AuthUserRevokeRoleResponse(header=self.header(r.revision))
        return await guarded(context, run)

    # ------------------------------------------------------------------ roles

    async def RoleAdd(self, request: rpc_pb2.AuthRoleAddRequest, context: Ctx
                      ) -> rpc_pb2.AuthRoleAddResponse:
        async def run() -> rpc_pb2.AuthRoleAddResponse:
            r = await self._apply(RoleAdd(request.name))
            return rpc_pb2.AuthRoleAddResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def RoleGet(self, request: rpc_pb2.AuthRoleGetRequest, context: Ctx
                      ) -> rpc_pb2.AuthRoleGetResponse:
        async def run() -> rpc_pb2.AuthRoleGetResponse:
            store = await self._read()
            if not caller_has_role(self.driver.sm, request.role):
                raise AuthError(e.AUTH_PERMISSION_DENIED)
            perms = [auth_pb2.Permission(permType=p.perm, key=p.key, range_end=p.range_end)
                     for p in store.role_perms(request.role)]
            return rpc_pb2.AuthRoleGetResponse(header=self.header(), perm=perms)
        return await guarded(context, run)

    async def RoleList(self, request: rpc_pb2.AuthRoleListRequest, context: Ctx
                       ) -> rpc_pb2.AuthRoleListResponse:
        async def run() -> rpc_pb2.AuthRoleListResponse:
            store = await self._read()
            return rpc_pb2.AuthRoleListResponse(header=self.header(),
                                                roles=sorted(store.roles))
        return await guarded(context, run)

    async def RoleDelete(self, request: rpc_pb2.AuthRoleDeleteRequest, context: Ctx
                         ) -> rpc_pb2.AuthRoleDeleteResponse:
        async def run() -> rpc_pb2.AuthRoleDeleteResponse:
            r = await self._apply(RoleDelete(request.role))
            return rpc_pb2.AuthRoleDeleteResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def RoleGrantPermission(self, request: rpc_pb2.AuthRoleGrantPermissionRequest,
                                  context: Ctx) -> rpc_pb2.AuthRoleGrantPermissionResponse:
        async def run() -> rpc_pb2.AuthRoleGrantPermissionResponse:
            perm = None
            if request.HasField("perm"):
                p = request.perm
                perm = Permission(p.key, p.range_end, int(p.permType))
            r = await self._apply(RoleGrantPermission(request.name, perm))
            return rpc_pb2.AuthRoleGrantPermissionResponse(header=self.header(r.revision))
        return await guarded(context, run)

    async def RoleRevokePermission(self, request: rpc_pb2.AuthRoleRevokePermissionRequest,
                                   context: Ctx) -> rpc_pb2.AuthRoleRevokePermissionResponse:
        async def run() -> rpc_pb2.AuthRoleRevokePermissionResponse:
            r = await self._apply(RoleRevokePermission(request.role, request.key,
                                                       request.range_end))
            return rpc_pb2.AuthRoleRevokePermissionResponse(header=self.header(r.revision))
        return await guarded(context, run)
