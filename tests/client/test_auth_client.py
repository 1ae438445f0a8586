"""The client with authentication on, against a real ``raftkv serve`` member (gRPC, so the
server's auth interceptor runs): one Authenticate for many calls, re-authentication by
itself when a token goes stale (unary calls, watch and keep-alive streams), typed errors,
and the Auth API."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from raftkv import errors as e
from raftkv.client import (
    AuthFailedError,
    AuthNotEnabledError,
    AuthOldRevisionError,
    Client,
    GrpcTransport,
    InvalidAuthRequestError,
    InvalidAuthTokenError,
    Permission,
    PermissionNotGrantedError,
    RoleExistsError,
    RoleNotFoundError,
    RoleNotGrantedError,
    RootRoleMissingError,
    SyncClient,
    Transport,
    UserEmptyError,
    UserExistsError,
    UserNotFoundError,
)
from raftkv.client._errors import classify
from tests.client.conftest import run
from tests.client.test_docs import CLUSTER_UP, DOC
from tests.integration.procs import ProcCluster, cluster

TTL_S = 2  # the member's --auth-token-ttl: a token idle that long is refused
ROOT = ("root", "rootpw")


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    """One member with auth on (root / rootpw), cheap bcrypt and short-lived tokens."""
    c = ProcCluster(Path(tmp_path_factory.mktemp("auth-client")), 1,
                    flags=("--bcrypt-cost", "4", "--auth-token-ttl", str(TTL_S)))
    c.start_all()
    try:
        c.leader()

        async def setup() -> None:
            async with Client(c.endpoints) as admin:
                await admin.user_add(*ROOT)
                await admin.user_grant_role("root", "root")
                await admin.auth_enable()
        run(setup())
        yield c
    finally:
        c.stop_all()


class Spy:
    """A GrpcTransport that counts Authenticate calls, and sends a bogus token on the
    stream calls of the methods in ``tamper`` (the server refuses it: invalid token)
    until the client has re-authenticated after such a refusal."""

    def __init__(self, endpoints: str, *tamper: str) -> None:
        self.inner = GrpcTransport(endpoints)
        self.authenticates = 0
        self.tamper, self.tampered = set(tamper), set[str]()

    def __getattr__(self, name: str) -> Any:
        stub = getattr(self.inner, name)
        method = {"auth": "Authenticate", "watch": "Watch", "lease": "LeaseKeepAlive"}.get(name)
        return stub if method is None else _Proxy(stub, self, method)

    def client(self) -> Client:
        return Client.from_transport(cast(Transport, self), username=ROOT[0],
                                     password=ROOT[1])


class _Proxy:
    def __init__(self, stub: Any, spy: Spy, method: str) -> None:
        self.stub, self.spy, self.method = stub, spy, method

    def __getattr__(self, name: str) -> Any:
        inner = getattr(self.stub, name)
        if name != self.method:
            return inner

        def call(request: Any, **kw: Any) -> Any:
            spy = self.spy
            if name == "Authenticate":
                spy.authenticates += 1
                spy.tamper -= spy.tampered  # the refusals it answers
            elif name in spy.tamper:
                spy.tampered.add(name)
                kw["metadata"] = (("token", "bogus.1"),)
            return inner(request, **kw)
        return call


def test_one_authenticate_serves_many_calls_and_streams(member: ProcCluster) -> None:
    async def body() -> None:
        spy = Spy(member.endpoints)
        async with spy.client() as c:
            await asyncio.gather(*(c.put(f"/once/{i}", str(i)) for i in range(20)))
            assert len((await c.get_prefix("/once/")).kvs) == 20
            async with c.watch("/once/", prefix=True) as w:
                await c.put("/once/new", "x")
                async for ev in w:
                    assert ev.key == b"/once/new"
                    break
            assert await c.keep_alive_once((await c.grant(5)).id) > 0
            assert c.auth_token is not None
        assert spy.authenticates == 1
    run(body())


def test_stale_tokens_are_replaced_by_the_client(member: ProcCluster) -> None:
    async def body() -> None:
        spy = Spy(member.endpoints)
        async with spy.client() as c, \
                Client(member.endpoints, username=ROOT[0], password=ROOT[1]) as writer:
            await c.put("/stale/k", "1")
            watch = c.watch("/stale/k")  # start pinned now; the stream opens later
            first = c.auth_token
            await asyncio.sleep(TTL_S + 1)  # c's token expires idle on the member
            await writer.put("/stale/k", "2")
            async for ev in watch:  # the stream is refused, re-authenticates, resumes
                assert ev.value == b"2"
                break
            await watch.cancel()
            assert spy.authenticates == 2
            assert c.auth_token != first
            await asyncio.sleep(TTL_S + 1)
            kv = await c.get("/stale/k")  # and so does a unary call
            assert kv is not None
            assert kv.value == b"2"
            assert spy.authenticates == 3
    run(body())


def test_refused_streams_reauthenticate_and_resume(member: ProcCluster) -> None:
    """A watch and a lease keep-alive stream whose server says "invalid auth token"."""
    async def body() -> None:
        spy = Spy(member.endpoints, "Watch", "LeaseKeepAlive")
        async with spy.client() as c:
            async with c.lease(ttl=3) as lease:
                await asyncio.sleep(0.5)
                assert not lease.is_lost  # lost at once if the refusal had stood
                assert spy.tamper == {"Watch"}
                start = (await c.put("/refused/k", "v", lease=lease.id)).revision
                async for ev in c.watch("/refused/k", start_revision=start):
                    assert ev.value == b"v"
                    break
            assert spy.tamper == set()
            assert spy.authenticates == 3  # once, then once per refused stream
    run(body())


def test_typed_errors(member: ProcCluster) -> None:
    async def body() -> None:
        async with Client(member.endpoints) as anonymous:
            with pytest.raises(UserEmptyError) as empty:
                await anonymous.get("k")
            assert isinstance(empty.value, e.PermissionDeniedError)
            assert str(empty.value) == e.AUTH_USER_EMPTY
        async with Client(member.endpoints, username="root", password="wrong") as bad:
            with pytest.raises(AuthFailedError) as failed:
                await bad.get("k")
            assert str(failed.value) == e.AUTH_FAILED
            assert "wrong" not in repr(failed.value)
        async with Client(member.endpoints, username=ROOT[0], password=ROOT[1]) as root:
            await root.role_add("typed-reader")
            await root.role_grant_permission("typed-reader", "/typed/", perm="read",
                                             prefix=True)
            await root.user_add("typed", "pw")
            await root.user_grant_role("typed", "typed-reader")
            with pytest.raises(UserExistsError):
                await root.user_add("typed", "pw")
            with pytest.raises(RoleNotFoundError):
                await root.role_get("typed-nope")
            with pytest.raises(RoleNotGrantedError):
                await root.user_revoke_role("typed", "root")
            with pytest.raises(PermissionNotGrantedError):
                await root.role_revoke_permission("typed-reader", "/elsewhere")
        async with Client(member.endpoints, username="typed", password="pw") as typed:
            await typed.get("/typed/k")  # the write-id probe and watch pins need no key
            with pytest.raises(e.PermissionDeniedError) as denied:
                await typed.put("/typed/k", "v")
            assert type(denied.value) is e.PermissionDeniedError
            async with typed.watch("/typed/", prefix=True):
                pass
    run(body())


@pytest.mark.parametrize(("message", "cls"), [
    (e.AUTH_FAILED, AuthFailedError), (e.AUTH_NO_PASSWORD_USER, AuthFailedError),
    (e.AUTH_INVALID_TOKEN, InvalidAuthTokenError), (e.AUTH_OLD_REVISION, AuthOldRevisionError),
    (e.AUTH_USER_EMPTY, UserEmptyError), (e.AUTH_NOT_ENABLED, AuthNotEnabledError),
    (e.AUTH_USER_NOT_FOUND, UserNotFoundError), (e.AUTH_USER_ALREADY_EXIST, UserExistsError),
    (e.AUTH_ROLE_NOT_FOUND, RoleNotFoundError), (e.AUTH_ROLE_ALREADY_EXIST, RoleExistsError),
    (e.AUTH_ROLE_NOT_GRANTED, RoleNotGrantedError),
    (e.AUTH_PERMISSION_NOT_GRANTED, PermissionNotGrantedError),
    (e.AUTH_ROOT_ROLE_NOT_EXIST, RootRoleMissingError),
    (e.AUTH_ROOT_USER_NOT_EXIST, RootRoleMissingError),
    (e.AUTH_ROLE_EMPTY, InvalidAuthRequestError), (e.AUTH_INVALID_MGMT, InvalidAuthRequestError),
    (e.AUTH_PERMISSION_NOT_GIVEN, InvalidAuthRequestError),
    (e.AUTH_PERMISSION_DENIED, e.PermissionDeniedError),
])
def test_every_auth_message_has_its_class(message: str, cls: type[e.RaftKVError]) -> None:
    from raftkv.wire.status import AUTH_CODES

    code = AUTH_CODES.get(message, grpc.StatusCode.UNKNOWN)
    assert classify(code, message) is cls
    assert issubclass(cls, e.PermissionDeniedError)
    if code == grpc.StatusCode.INVALID_ARGUMENT and cls not in (AuthFailedError,
                                                                UserEmptyError):
        assert issubclass(cls, e.InvalidRequestError)  # what these mapped to before


def test_auth_api(member: ProcCluster) -> None:
    async def body() -> None:
        async with Client(member.endpoints, username=ROOT[0], password=ROOT[1]) as c:
            before = (await c.auth_status()).auth_revision
            await c.role_add("api-role")
            await c.role_grant_permission("api-role", "/p/", perm="read", prefix=True)
            await c.role_grant_permission("api-role", "k", perm="readwrite")
            await c.role_grant_permission("api-role", "a", "c", perm="write")
            await c.role_grant_permission("api-role", "f", perm="read", from_key=True)
            role = await c.role_get("api-role")
            assert role.permissions == (Permission(b"/p/", b"/p0", "read"),
                                        Permission(b"a", b"c", "write"),
                                        Permission(b"f", b"\0", "read"),
                                        Permission(b"k", b"", "readwrite"))
            assert role.permissions[0].is_prefix
            await c.role_revoke_permission("api-role", "f", from_key=True)
            assert len((await c.role_get("api-role")).permissions) == 3
            await c.user_add("api-user", "pw1")
            await c.user_add("api-cert", no_password=True)
            await c.user_grant_role("api-user", "api-role")
            assert (await c.user_get("api-user")).roles == ("api-role",)
            assert {"api-user", "api-cert", "root"} <= set(await c.user_list())
            assert "api-role" in await c.role_list()
            await c.user_change_password("api-user", "pw2")
            async with Client(member.endpoints, username="api-user", password="pw2") as u:
                await u.put("k", "mine")
                assert (await u.user_get("api-user")).name == "api-user"  # itself: allowed
                with pytest.raises(e.PermissionDeniedError):
                    await u.user_change_password("api-user", "pw3")  # root only
        async with Client(member.endpoints, username=ROOT[0], password=ROOT[1]) as c:
            await c.user_revoke_role("api-user", "api-role")
            await c.user_delete("api-user")
            await c.role_delete("api-role")
            assert "api-role" not in await c.role_list()
            status = await c.auth_status()
            assert status.enabled
            assert status.auth_revision > before
            with pytest.raises(ValueError, match="mutually exclusive"):
                await c.role_grant_permission("x", "k", prefix=True, from_key=True)
    run(body())


def test_own_password_change_and_the_sync_facade(member: ProcCluster) -> None:
    with SyncClient(member.endpoints, username=ROOT[0], password=ROOT[1]) as root:
        root.user_add("sync-admin", "old")
        root.user_grant_role("sync-admin", "root")
    with SyncClient(member.endpoints, username="sync-admin", password="old") as other, \
            SyncClient(member.endpoints, username="sync-admin", password="old") as c:
        c.put("/sync/a", "1")
        other.put("/sync/b", "2")
        c.user_change_password("sync-admin", "new")  # every token of sync-admin is void
        assert c.get("/sync/a").value == b"1"  # c re-authenticates with the new password
        with pytest.raises(AuthFailedError):  # other tries again with "old": refused
            other.get("/sync/a")
        token = c.authenticate()  # a fresh token on demand
        assert token is not None
        assert token == c.auth_token


def test_the_docs_authentication_program_runs_as_shown(tmp_path: Path) -> None:
    """docs/client.md's *Authentication* program turns auth on and off again: it runs
    here, on a member of its own, with only the endpoints swapped."""
    text = DOC.read_text()
    section = text[text.index("## Authentication"):text.index("## Errors")]
    (program,) = re.findall(r"^```py\n(.*?)^```", section, re.S | re.M)
    with cluster(tmp_path, 1, flags=("--bcrypt-cost", "4")) as c:
        c.leader()
        done = subprocess.run([sys.executable, "-c", program.replace(CLUSTER_UP, c.endpoints)],
                              cwd=DOC.parents[1], text=True, capture_output=True, timeout=120,
                              check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["b'active'", e.AUTH_PERMISSION_DENIED]
