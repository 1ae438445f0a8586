"""etcd's authentication and RBAC on real member processes (the reference's
security-and-operations.md §7, cases 1-29 that apply to simple tokens), driven by raw gRPC
stubs where the exact code and message matter and by the real etcdctl 3.4 where the
user-facing path does.

One module-scoped 3-member cluster (auth on, ``--bcrypt-cost 4``, ``--log-level debug``)
serves most tests; each test makes its own users and roles and keys with its own names,
so the tests do not depend on their order (pytest-xdist may give each worker its own
cluster). The auth lifecycle (auth off, then on, then off), the token TTL, and the restart
and snapshot-install cases each run their own small cluster.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.v3electionpb import v3election_pb2, v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2, v3lock_pb2_grpc
from tests.integration.procs import Member, ProcCluster, etcdctl

pytestmark = pytest.mark.slow

Md = tuple[tuple[str, str], ...]
C = grpc.StatusCode
R = rpc_pb2
READ, WRITE, READWRITE = (auth_pb2.Permission.READ, auth_pb2.Permission.WRITE,
                          auth_pb2.Permission.READWRITE)
FAST = ("--bcrypt-cost", "4", "--log-level", "debug")

# etcd's exact texts (api/v3rpc/rpctypes/error.go), written out here on purpose
ROOT_USER_NOT_EXIST = "etcdserver: root user does not exist"
ROOT_ROLE_NOT_EXIST = "etcdserver: root user does not have root role"
USER_ALREADY_EXIST = "etcdserver: user name already exists"
USER_EMPTY = "etcdserver: user name is empty"
USER_NOT_FOUND = "etcdserver: user name not found"
ROLE_ALREADY_EXIST = "etcdserver: role name already exists"
ROLE_NOT_FOUND = "etcdserver: role name not found"
ROLE_EMPTY = "etcdserver: role name is empty"
AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password"
PERMISSION_NOT_GIVEN = "etcdserver: permission not given"
DENIED = "etcdserver: permission denied"
ROLE_NOT_GRANTED = "etcdserver: role is not granted to the user"
PERMISSION_NOT_GRANTED = "etcdserver: permission is not granted to the role"
NOT_ENABLED = "etcdserver: authentication is not enabled"
INVALID_TOKEN = "etcdserver: invalid auth token"
INVALID_MGMT = "etcdserver: invalid auth management"
OLD_REVISION = "etcdserver: revision of auth store is old"

IS_DENIED = (C.PERMISSION_DENIED, DENIED)
IS_EMPTY = (C.INVALID_ARGUMENT, USER_EMPTY)
IS_INVALID_TOKEN = (C.UNAUTHENTICATED, INVALID_TOKEN)
IS_INVALID_MGMT = (C.INVALID_ARGUMENT, INVALID_MGMT)
IS_OLD_REVISION = (C.INVALID_ARGUMENT, OLD_REVISION)
WATCH_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"

PASSWORDS: dict[str, str] = {}
"""Every password this process gives a user (random, so that its bytes appear nowhere by
chance): case 28 looks for each of them in the members' files."""


def pw(user: str) -> str:
    return PASSWORDS.setdefault(user, "Pw" + secrets.token_hex(12))


def tok(token: str) -> Md:
    return (("token", token),)


# ------------------------------------------------------------------ stubs and helpers


class AuthProcCluster(ProcCluster):
    """A :class:`ProcCluster` whose Status probes (``leader``, ``wait_up``,
    ``wait_applied``) carry a root token once auth is on: etcd answers Status only to an
    authenticated user then."""

    token = ""

    def status(self, m: Member, timeout: float = 1.0) -> rpc_pb2.StatusResponse | None:
        if not m.alive():
            return None
        for attempt in range(2):
            try:
                st: rpc_pb2.StatusResponse = self.maint(m).Status(
                    R.StatusRequest(), metadata=tok(self.token) if self.token else (),
                    timeout=timeout)
                return st
            except grpc.RpcError as exc:
                if attempt or exc.code() not in (C.INVALID_ARGUMENT, C.UNAUTHENTICATED) \
                        or "root" not in PASSWORDS:
                    return None
            try:  # auth is on and there is no valid token: take one from this member
                auth = rpc_pb2_grpc.AuthStub(self._channel(m))  # type: ignore[no-untyped-call]
                self.token = auth.Authenticate(R.AuthenticateRequest(
                    name="root", password=PASSWORDS["root"]), timeout=timeout).token
            except grpc.RpcError:
                return None
        return None


@contextlib.contextmanager
def auth_cluster(root: Path, size: int, flags: tuple[str, ...] = FAST
                 ) -> Iterator[AuthProcCluster]:
    c = AuthProcCluster(root, size, flags=flags)
    c.start_all()
    try:
        yield c
    finally:
        c.stop_all()


class Auth:
    """Raw stubs on a :class:`ProcCluster` (its shared channel per member), a root token,
    and user/role setup through root."""

    def __init__(self, c: AuthProcCluster) -> None:
        self.c = c
        self.home: Member | None = None
        """The member the helpers talk to (default: the first)."""

    @property
    def root(self) -> str:
        return self.c.token

    @root.setter
    def root(self, token: str) -> None:
        self.c.token = token

    def settle(self) -> None:
        """Every member has applied what is committed now (AuthStatus is served after a
        read barrier), so that the next request anywhere sees the latest auth state."""
        for m in self.c.members:
            if m.alive():
                self.revision(m)

    @property
    def m0(self) -> Member:
        return self.home or self.c.members[0]

    def ch(self, m: Member | None) -> grpc.Channel:
        return self.c._channel(m or self.m0)

    def auth(self, m: Member | None = None) -> rpc_pb2_grpc.AuthStub:
        return rpc_pb2_grpc.AuthStub(self.ch(m))  # type: ignore[no-untyped-call]

    def kv(self, m: Member | None = None) -> rpc_pb2_grpc.KVStub:
        return rpc_pb2_grpc.KVStub(self.ch(m))  # type: ignore[no-untyped-call]

    def lease(self, m: Member | None = None) -> rpc_pb2_grpc.LeaseStub:
        return rpc_pb2_grpc.LeaseStub(self.ch(m))  # type: ignore[no-untyped-call]

    def maint(self, m: Member | None = None) -> rpc_pb2_grpc.MaintenanceStub:
        return rpc_pb2_grpc.MaintenanceStub(self.ch(m))  # type: ignore[no-untyped-call]

    def clus(self, m: Member | None = None) -> rpc_pb2_grpc.ClusterStub:
        return rpc_pb2_grpc.ClusterStub(self.ch(m))  # type: ignore[no-untyped-call]

    def lock(self, m: Member | None = None) -> v3lock_pb2_grpc.LockStub:
        return v3lock_pb2_grpc.LockStub(self.ch(m))  # type: ignore[no-untyped-call]

    def election(self, m: Member | None = None) -> v3election_pb2_grpc.ElectionStub:
        return v3election_pb2_grpc.ElectionStub(self.ch(m))  # type: ignore[no-untyped-call]

    @property
    def rmd(self) -> Md:
        return tok(self.root)

    def login(self, user: str, m: Member | None = None, password: str | None = None) -> str:
        r = self.auth(m).Authenticate(
            R.AuthenticateRequest(name=user, password=pw(user) if password is None else password),
            timeout=10)
        assert r.token
        return str(r.token)

    def revision(self, m: Member | None = None) -> int:
        st = self.auth(m).AuthStatus(R.AuthStatusRequest(), timeout=10)
        return int(st.authRevision)

    def add_user(self, name: str) -> None:
        self.auth().UserAdd(R.AuthUserAddRequest(name=name, password=pw(name)),
                            metadata=self.rmd, timeout=10)

    def grant(self, role: str, ptype: int, key: bytes, end: bytes = b"") -> None:
        self.auth().RoleGrantPermission(
            R.AuthRoleGrantPermissionRequest(
                name=role, perm=auth_pb2.Permission(permType=ptype,  # type: ignore[arg-type]
                                                    key=key, range_end=end)),
            metadata=self.rmd, timeout=10)

    def user(self, name: str, *perms: tuple[int, bytes, bytes]) -> str:
        """A new user holding a new role ``name + "-r"`` with ``perms`` (type, key,
        range_end); its token (issued by member 0)."""
        self.add_user(name)
        role = f"{name}-r"
        self.auth().RoleAdd(R.AuthRoleAddRequest(name=role), metadata=self.rmd, timeout=10)
        for ptype, key, end in perms:
            self.grant(role, ptype, key, end)
        self.auth().UserGrantRole(R.AuthUserGrantRoleRequest(user=name, role=role),
                                  metadata=self.rmd, timeout=10)
        token = self.login(name)
        self.settle()
        return token

    def put(self, key: bytes, value: bytes = b"v", lease: int = 0) -> None:
        self.kv().Put(R.PutRequest(key=key, value=value, lease=lease), metadata=self.rmd,
                      timeout=10)

    def grant_lease(self, ttl: int, md: Md | None = None) -> int:
        r = self.lease().LeaseGrant(R.LeaseGrantRequest(TTL=ttl),
                                    metadata=self.rmd if md is None else md, timeout=10)
        return int(r.ID)


def fails(call: Callable[..., Any], req: Any, md: Md = ()) -> tuple[grpc.StatusCode, str]:
    """The (code, details) a unary call fails with; fails the test if it succeeds."""
    with pytest.raises(grpc.RpcError) as info:
        call(req, metadata=md, timeout=10)
    return info.value.code(), info.value.details() or ""


def stream_fails(call: Callable[..., Any], req: Any, md: Md = ()
                 ) -> tuple[grpc.StatusCode, str]:
    """Like :func:`fails` for a call that answers with a stream (read to its end)."""
    with pytest.raises(grpc.RpcError) as info:
        for _ in call(req, metadata=md, timeout=10):
            pass
    return info.value.code(), info.value.details() or ""


def keys_of(r: rpc_pb2.RangeResponse) -> list[bytes]:
    return [kv.key for kv in r.kvs]


def ctl_ok(ep: str, *args: str) -> str:
    r = etcdctl(ep, *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def ctl_error(ep: str, *args: str, stdin: str | None = None) -> str:
    """The ``Error: ...`` line of a failing etcdctl command."""
    r = etcdctl(ep, *args, stdin=stdin)
    assert r.returncode != 0, (args, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]
    assert lines, r.stderr
    return lines[-1]


class Watch:
    """A raw Watch stream with its own channel, read by a thread."""

    def __init__(self, endpoint: str, md: Md = ()) -> None:
        self.channel = grpc.insecure_channel(endpoint,
                                             options=[("grpc.use_local_subchannel_pool", 1)])
        self.requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        stub = rpc_pb2_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.call = stub.Watch(iter(self.requests.get, None), metadata=md, wait_for_ready=True)
        self.responses: queue.Queue[rpc_pb2.WatchResponse | grpc.RpcError] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for resp in self.call:
                self.responses.put(resp)
        except grpc.RpcError as exc:
            self.responses.put(exc)

    def create(self, key: bytes, range_end: bytes = b"") -> None:
        self.requests.put(R.WatchRequest(
            create_request=R.WatchCreateRequest(key=key, range_end=range_end)))

    def next(self, timeout: float = 10.0) -> rpc_pb2.WatchResponse:
        item = self.responses.get(timeout=timeout)
        assert isinstance(item, rpc_pb2.WatchResponse), item
        return item

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


@contextlib.contextmanager
def watching(endpoint: str, md: Md = ()) -> Iterator[Watch]:
    w = Watch(endpoint, md)
    try:
        yield w
    finally:
        w.close()


def enable_auth(a: Auth) -> None:
    """root (with role root) and auth on; ``a.root`` a root token."""
    a.auth().UserAdd(R.AuthUserAddRequest(name="root", password=pw("root")), timeout=10)
    a.auth().RoleAdd(R.AuthRoleAddRequest(name="root"), timeout=10)
    a.auth().UserGrantRole(R.AuthUserGrantRoleRequest(user="root", role="root"), timeout=10)
    a.auth().AuthEnable(R.AuthEnableRequest(), timeout=10)
    a.root = a.login("root")


@pytest.fixture(scope="module")
def a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auth]:
    with auth_cluster(tmp_path_factory.mktemp("auth"), 3) as pc:
        pc.leader()
        au = Auth(pc)
        enable_auth(au)
        yield au


def followers(a: Auth) -> list[Member]:
    lead = a.c.leader()
    return [m for m in a.c.members if m is not lead]


# ------------------------------------------------------------------ 1-3, 6, 10: the switch


def test_enable_rules_revision_and_disable_lifecycle(tmp_path: Path) -> None:
    """Cases 1, 2, 3, 6 and 10 on a cluster of its own, from auth off to on and back."""
    with auth_cluster(tmp_path, 1) as pc:
        pc.leader()
        a = Auth(pc)
        ep = pc.endpoints
        st = a.auth().AuthStatus(R.AuthStatusRequest(), timeout=10)
        assert not st.enabled
        revs = [int(st.authRevision)]

        def bumped() -> None:  # AuthStatus needs no token, and every change raises it
            revs.append(a.revision())
            assert revs[-1] > revs[-2], revs

        # 6: Authenticate with auth off; every request works with or without a token
        assert fails(a.auth().Authenticate,
                     R.AuthenticateRequest(name="root", password="x")) == (
            C.FAILED_PRECONDITION, NOT_ENABLED)
        a.kv().Put(R.PutRequest(key=b"k", value=b"v"), metadata=tok("garbage"), timeout=10)
        # 1: no root user
        assert fails(a.auth().AuthEnable, R.AuthEnableRequest()) == (
            C.FAILED_PRECONDITION, ROOT_USER_NOT_EXIST)
        assert a.revision() == revs[-1]
        a.auth().UserAdd(R.AuthUserAddRequest(name="root", password=pw("root")), timeout=10)
        bumped()
        # 2: root without the root role; etcdctl's auth enable adds it by itself
        assert fails(a.auth().AuthEnable, R.AuthEnableRequest()) == (
            C.FAILED_PRECONDITION, ROOT_ROLE_NOT_EXIST)
        assert ctl_ok(ep, "auth", "enable") == "Authentication Enabled\n"
        st = a.auth().AuthStatus(R.AuthStatusRequest(), timeout=10)
        assert st.enabled
        assert st.authRevision >= revs[-1] + 3  # role add, grant role, enable
        revs.append(int(st.authRevision))
        a.root = a.login("root")
        # 3: enabling again is a success that changes nothing
        a.auth().AuthEnable(R.AuthEnableRequest(), metadata=a.rmd, timeout=10)
        assert ctl_ok(ep, f"--user=root:{pw('root')}", "auth", "enable") == \
            "Authentication Enabled\n"
        assert a.revision() == revs[-1]
        ruser = f"--user=root:{pw('root')}"
        for args in (("user", "add", f"alice:{pw('alice')}"), ("role", "add", "ra"),
                     ("role", "grant-permission", "ra", "readwrite", "k"),
                     ("user", "grant-role", "alice", "ra"),
                     ("role", "grant-permission", "ra", "read", "k2"),
                     ("role", "revoke-permission", "ra", "k2"),
                     ("user", "add", f"bob:{pw('bob')}"), ("user", "delete", "bob"),
                     ("role", "add", "rb"), ("role", "delete", "rb")):
            ctl_ok(ep, ruser, *args)
            bumped()
        alice = a.login("alice")
        assert keys_of(a.kv().Range(R.RangeRequest(key=b"k"), metadata=tok(alice),
                                    timeout=10)) == [b"k"]
        # 10: only root disables
        assert fails(a.auth().AuthDisable, R.AuthDisableRequest(), tok(alice)) == IS_DENIED
        assert fails(a.auth().AuthDisable, R.AuthDisableRequest()) == IS_EMPTY
        assert ctl_error(ep, f"--user=alice:{pw('alice')}", "auth", "disable") == \
            f"Error: {DENIED}"
        assert a.auth().AuthStatus(R.AuthStatusRequest(), timeout=10).enabled
        assert ctl_ok(ep, ruser, "auth", "disable") == "Authentication Disabled\n"
        st = a.auth().AuthStatus(R.AuthStatusRequest(), timeout=10)
        assert not st.enabled
        bumped()
        # 6 again: off means Authenticate fails, and a stale token (or garbage) is ignored
        assert fails(a.auth().Authenticate,
                     R.AuthenticateRequest(name="root", password=pw("root"))) == (
            C.FAILED_PRECONDITION, NOT_ENABLED)
        for md in (a.rmd, tok(alice), tok("garbage.1"), (("authorization", "Bearer x"),)):
            r = a.kv().Range(R.RangeRequest(key=b"k"), metadata=md, timeout=10)
            assert keys_of(r) == [b"k"]
        assert ctl_ok(ep, f"--user=alice:{pw('alice')}", "get", "k", "--print-value-only") \
            == "v\n"
        assert ctl_ok(ep, "--user=alice:wrong", "put", "k", "w") == "OK\n"
        # disabling dropped every token: on again, the old ones are invalid
        a.auth().AuthEnable(R.AuthEnableRequest(), timeout=10)
        bumped()
        for md in (a.rmd, tok(alice)):
            assert fails(a.kv().Range, R.RangeRequest(key=b"k"), md) == IS_INVALID_TOKEN
        a.root = a.login("root")
        a.auth().AuthDisable(R.AuthDisableRequest(), metadata=a.rmd, timeout=10)
        bumped()
        # 10: with auth off the root role and user may go (aetcd's teardown)
        assert ctl_ok(ep, "role", "delete", "root") == "Role root deleted\n"
        assert ctl_ok(ep, "user", "delete", "root") == "User root deleted\n"
        bumped()
        assert ctl_ok(ep, "user", "list") == "alice\n"
    assert _leaks(_member_paths(pc), PASSWORDS) == []  # 28, with etcdctl's passwords too


# ------------------------------------------------------------------ 4, 5, 7: who asks


@pytest.mark.parametrize(("method", "req"), [
    ("Range", R.RangeRequest(key=b"k4")),
    ("Put", R.PutRequest(key=b"k4", value=b"v")),
    ("DeleteRange", R.DeleteRangeRequest(key=b"k4")),
    ("Txn", R.TxnRequest(success=[R.RequestOp(request_range=R.RangeRequest(key=b"k4"))])),
    ("Range-serializable", R.RangeRequest(key=b"k4", serializable=True)),
])
def test_kv_without_a_token_is_user_name_is_empty(a: Auth, method: str, req: Any) -> None:
    for m in a.c.members:
        assert fails(getattr(a.kv(m), method.split("-")[0]), req) == IS_EMPTY


def test_etcdctl_without_user_gets_user_name_is_empty(a: Auth) -> None:
    assert ctl_error(a.c.endpoints, "get", "k4") == f"Error: {USER_EMPTY}"
    assert ctl_error(a.c.endpoints, "put", "k4", "v") == f"Error: {USER_EMPTY}"


def test_wrong_password_and_unknown_user_fail_alike(a: Auth) -> None:
    a.user("u5")
    for m in a.c.members:
        for name, password in (("u5", "wrong"), ("u5", ""), ("nobody5", pw("u5")),
                               ("", "")):
            assert fails(a.auth(m).Authenticate,
                         R.AuthenticateRequest(name=name, password=password)) == (
                C.INVALID_ARGUMENT, AUTH_FAILED), (name, password)
    # a user without a password cannot authenticate at all: etcd's unmapped error
    a.auth().UserAdd(R.AuthUserAddRequest(name="u5nopw", options=auth_pb2.UserAddOptions(
        no_password=True)), metadata=a.rmd, timeout=10)
    for password in ("", "x"):
        assert fails(a.auth().Authenticate,
                     R.AuthenticateRequest(name="u5nopw", password=password)) == (
            C.UNKNOWN, "auth: authentication failed, password was given for no password user")
    assert ctl_error(a.c.endpoints, "--user=u5:wrong", "get", "k") == f"Error: {AUTH_FAILED}"
    assert ctl_error(a.c.endpoints, "--user=nobody5:x", "get", "k") == f"Error: {AUTH_FAILED}"


def test_garbage_token_is_invalid_and_authorization_metadata_is_accepted(a: Auth) -> None:
    t = a.user("u7", (READ, b"k7", b""))
    a.put(b"k7")
    req = R.RangeRequest(key=b"k7")
    for m in a.c.members:
        kv = a.kv(m)
        for md in (tok("garbage"), tok("abcdefghijklmnop.1"), tok(""),
                   (("authorization", "garbage"),), (("authorization", "Bearer garbage"),)):
            assert fails(kv.Range, req, md) == IS_INVALID_TOKEN, md
            assert fails(kv.Put, R.PutRequest(key=b"k7", value=b"x"), md) == \
                IS_INVALID_TOKEN, md
        for md in (tok(t), (("authorization", t),), (("authorization", f"Bearer {t}"),)):
            assert keys_of(kv.Range(req, metadata=md, timeout=10)) == [b"k7"], md
        assert fails(kv.Put, R.PutRequest(key=b"k7", value=b"x"),
                     (("authorization", f"Bearer {t}"),)) == IS_DENIED


def test_a_token_from_one_member_is_accepted_at_once_by_the_others(a: Auth) -> None:
    a.user("ux", (READ, b"kx", b""))
    a.put(b"kx")
    ms = a.c.members
    for i in range(6):  # issuer: leader and followers; users: the others, immediately
        issuer = ms[i % 3]
        t = a.login("ux", issuer)
        for m in (ms[(i + 1) % 3], ms[(i + 2) % 3], issuer):
            r = a.kv(m).Range(R.RangeRequest(key=b"kx", serializable=i % 2 == 1),
                              metadata=tok(t), timeout=10)
            assert keys_of(r) == [b"kx"], (issuer.name, m.name)


# ------------------------------------------------------------------ 8: TTL


def test_an_idle_token_expires_and_a_used_one_slides(tmp_path: Path) -> None:
    with auth_cluster(tmp_path, 1, (*FAST, "--auth-token-ttl", "2")) as pc:
        pc.leader()
        a = Auth(pc)
        enable_auth(a)
        idle, busy = a.login("root"), a.login("root")
        req = R.RangeRequest(key=b"k")
        start = time.monotonic()
        while time.monotonic() - start < 4.5:
            a.kv().Range(req, metadata=tok(busy), timeout=10)
            time.sleep(0.5)
        assert fails(a.kv().Range, req, tok(idle)) == IS_INVALID_TOKEN
        assert fails(a.kv().Range, req, tok(idle)) == IS_INVALID_TOKEN  # gone for good
        a.kv().Range(req, metadata=tok(busy), timeout=10)
        fresh = a.login("root")
        a.kv().Range(req, metadata=tok(fresh), timeout=10)


# ------------------------------------------------------------------ 9: invalidation


def test_password_change_and_delete_invalidate_only_that_users_tokens(a: Auth) -> None:
    perm = (READ, b"k9", b"")
    a.put(b"k9")
    ta = a.user("u9a", perm)
    ta2 = a.login("u9a", a.c.members[1])
    tb = a.user("u9b", perm)
    tc = a.user("u9c", perm)
    req = R.RangeRequest(key=b"k9")

    def valid(t: str) -> None:
        for m in a.c.members:
            assert keys_of(a.kv(m).Range(req, metadata=tok(t), timeout=10)) == [b"k9"]

    def invalid(t: str) -> None:
        for m in a.c.members:
            assert fails(a.kv(m).Range, req, tok(t)) == IS_INVALID_TOKEN

    for t in (ta, ta2, tb, tc):
        valid(t)
    old = pw("u9a")
    new = PASSWORDS["u9a"] = "Pw" + secrets.token_hex(12)
    a.auth().UserChangePassword(R.AuthUserChangePasswordRequest(name="u9a", password=new),
                                metadata=a.rmd, timeout=10)
    a.settle()  # see test_a_read_on_a_follower_right_after_an_auth_change_sees_it
    invalid(ta)
    invalid(ta2)
    valid(tb)
    valid(tc)
    PASSWORDS["u9a-old"] = old
    assert fails(a.auth().Authenticate, R.AuthenticateRequest(name="u9a", password=old)) == (
        C.INVALID_ARGUMENT, AUTH_FAILED)
    valid(a.login("u9a"))
    a.auth().UserDelete(R.AuthUserDeleteRequest(name="u9b"), metadata=a.rmd, timeout=10)
    a.settle()
    invalid(tb)
    valid(tc)
    # the same name again is a new user: the old token stays dead
    a.add_user("u9b")
    a.settle()
    invalid(tb)


# ------------------------------------------------------------------ 11-16: management


def test_root_is_protected_while_enabled(a: Auth) -> None:
    au = a.auth()
    assert fails(au.UserDelete, R.AuthUserDeleteRequest(name="root"), a.rmd) == IS_INVALID_MGMT
    assert fails(au.RoleDelete, R.AuthRoleDeleteRequest(role="root"), a.rmd) == IS_INVALID_MGMT
    assert fails(au.UserRevokeRole, R.AuthUserRevokeRoleRequest(name="root", role="root"),
                 a.rmd) == IS_INVALID_MGMT
    ep, ruser = a.c.endpoints, f"--user=root:{pw('root')}"
    assert ctl_error(ep, ruser, "user", "delete", "root") == f"Error: {INVALID_MGMT}"
    assert ctl_error(ep, ruser, "role", "delete", "root") == f"Error: {INVALID_MGMT}"
    assert ctl_error(ep, ruser, "user", "revoke-role", "root", "root") == \
        f"Error: {INVALID_MGMT}"
    assert au.UserGet(R.AuthUserGetRequest(name="root"), metadata=a.rmd,
                      timeout=10).roles == ["root"]


def test_duplicates_and_empty_names(a: Auth) -> None:
    au = a.auth()
    a.add_user("u12")
    au.RoleAdd(R.AuthRoleAddRequest(name="r12"), metadata=a.rmd, timeout=10)
    assert fails(au.UserAdd, R.AuthUserAddRequest(name="u12", password="x"), a.rmd) == (
        C.FAILED_PRECONDITION, USER_ALREADY_EXIST)
    assert fails(au.UserAdd, R.AuthUserAddRequest(name="root", password="x"), a.rmd) == (
        C.FAILED_PRECONDITION, USER_ALREADY_EXIST)
    assert fails(au.RoleAdd, R.AuthRoleAddRequest(name="r12"), a.rmd) == (
        C.FAILED_PRECONDITION, ROLE_ALREADY_EXIST)
    assert fails(au.UserAdd, R.AuthUserAddRequest(name="", password="x"), a.rmd) == (
        C.INVALID_ARGUMENT, USER_EMPTY)
    assert fails(au.RoleAdd, R.AuthRoleAddRequest(name=""), a.rmd) == (
        C.INVALID_ARGUMENT, ROLE_EMPTY)
    ep, ruser = a.c.endpoints, f"--user=root:{pw('root')}"
    assert ctl_error(ep, ruser, "user", "add", "u12:x") == f"Error: {USER_ALREADY_EXIST}"
    assert ctl_error(ep, ruser, "role", "add", "r12") == f"Error: {ROLE_ALREADY_EXIST}"


def test_missing_users_roles_and_grants(a: Auth) -> None:
    au, md = a.auth(), a.rmd
    a.add_user("u13")
    au.RoleAdd(R.AuthRoleAddRequest(name="r13"), metadata=md, timeout=10)
    nf_user = (C.FAILED_PRECONDITION, USER_NOT_FOUND)
    nf_role = (C.FAILED_PRECONDITION, ROLE_NOT_FOUND)
    assert fails(au.UserGet, R.AuthUserGetRequest(name="nobody13"), md) == nf_user
    assert fails(au.UserDelete, R.AuthUserDeleteRequest(name="nobody13"), md) == nf_user
    assert fails(au.UserChangePassword,
                 R.AuthUserChangePasswordRequest(name="nobody13", password="x"), md) == nf_user
    assert fails(au.UserGrantRole, R.AuthUserGrantRoleRequest(user="nobody13", role="r13"),
                 md) == nf_user
    assert fails(au.UserRevokeRole, R.AuthUserRevokeRoleRequest(name="nobody13", role="r13"),
                 md) == nf_user
    assert fails(au.RoleGet, R.AuthRoleGetRequest(role="nobody13"), md) == nf_role
    assert fails(au.RoleDelete, R.AuthRoleDeleteRequest(role="nobody13"), md) == nf_role
    assert fails(au.UserGrantRole, R.AuthUserGrantRoleRequest(user="u13", role="nobody13"),
                 md) == nf_role
    assert fails(au.RoleGrantPermission, R.AuthRoleGrantPermissionRequest(
        name="nobody13", perm=auth_pb2.Permission(key=b"k")), md) == nf_role
    assert fails(au.RoleRevokePermission,
                 R.AuthRoleRevokePermissionRequest(role="nobody13", key=b"k"), md) == nf_role
    assert fails(au.UserRevokeRole, R.AuthUserRevokeRoleRequest(name="u13", role="r13"),
                 md) == (C.FAILED_PRECONDITION, ROLE_NOT_GRANTED)
    a.grant("r13", READ, b"k13", b"k14")
    for key, end in ((b"k13", b""), (b"k13", b"k15"), (b"other", b"")):
        assert fails(au.RoleRevokePermission,
                     R.AuthRoleRevokePermissionRequest(role="r13", key=key, range_end=end),
                     md) == (C.FAILED_PRECONDITION, PERMISSION_NOT_GRANTED), (key, end)
    au.RoleRevokePermission(R.AuthRoleRevokePermissionRequest(role="r13", key=b"k13",
                                                              range_end=b"k14"),
                            metadata=md, timeout=10)
    ep, ruser = a.c.endpoints, f"--user=root:{pw('root')}"
    assert ctl_error(ep, ruser, "user", "get", "nobody13") == f"Error: {USER_NOT_FOUND}"
    assert ctl_error(ep, ruser, "role", "get", "nobody13") == f"Error: {ROLE_NOT_FOUND}"


def test_grant_permission_validation_and_regrant(a: Auth) -> None:
    au, md = a.auth(), a.rmd
    au.RoleAdd(R.AuthRoleAddRequest(name="r14"), metadata=md, timeout=10)
    for key, end in ((b"", b""), (b"", b"z"), (b"k", b"k"), (b"k", b"a")):
        assert fails(au.RoleGrantPermission, R.AuthRoleGrantPermissionRequest(
            name="r14", perm=auth_pb2.Permission(permType=READ, key=key, range_end=end)),
            md) == IS_INVALID_MGMT, (key, end)
    assert fails(au.RoleGrantPermission, R.AuthRoleGrantPermissionRequest(name="r14"),
                 md) == (C.INVALID_ARGUMENT, PERMISSION_NOT_GIVEN)
    a.grant("r14", READ, b"k14", b"k15")
    a.grant("r14", READ, b"k14", b"")
    a.grant("r14", READ, b"k14", b"\0")
    a.grant("r14", WRITE, b"k14", b"k15")  # the same range again: its type changes
    perms = au.RoleGet(R.AuthRoleGetRequest(role="r14"), metadata=md, timeout=10).perm
    assert sorted((p.key, p.range_end, p.permType) for p in perms) == [
        (b"k14", b"", READ), (b"k14", b"\0", READ), (b"k14", b"k15", WRITE)]
    assert ctl_ok(a.c.endpoints, f"--user=root:{pw('root')}", "role", "get", "r14") == (
        "Role r14\nKV Read:\n\tk14\n\t[k14, <open ended>\nKV Write:\n\t[k14, k15) "
        "(prefix k14)\n")


def test_role_get_root_is_one_readwrite_perm_over_everything(a: Auth) -> None:
    r = a.auth().RoleGet(R.AuthRoleGetRequest(role="root"), metadata=a.rmd, timeout=10)
    assert [(p.permType, p.key, p.range_end) for p in r.perm] == [(READWRITE, b"", b"\0")]


def test_a_user_reads_itself_and_its_roles_only(a: Auth) -> None:
    t = a.user("u16")
    a.add_user("u16other")
    a.auth().RoleAdd(R.AuthRoleAddRequest(name="r16other"), metadata=a.rmd, timeout=10)
    md = tok(t)
    au = a.auth(a.c.members[2])
    assert list(au.UserGet(R.AuthUserGetRequest(name="u16"), metadata=md,
                           timeout=10).roles) == ["u16-r"]
    assert list(au.RoleGet(R.AuthRoleGetRequest(role="u16-r"), metadata=md,
                           timeout=10).perm) == []
    assert fails(au.UserGet, R.AuthUserGetRequest(name="u16other"), md) == IS_DENIED
    assert fails(au.UserGet, R.AuthUserGetRequest(name="root"), md) == IS_DENIED
    assert fails(au.RoleGet, R.AuthRoleGetRequest(role="r16other"), md) == IS_DENIED
    assert fails(au.RoleGet, R.AuthRoleGetRequest(role="root"), md) == IS_DENIED
    assert fails(au.UserList, R.AuthUserListRequest(), md) == IS_DENIED
    assert fails(au.RoleList, R.AuthRoleListRequest(), md) == IS_DENIED
    for call, req in ((au.UserAdd, R.AuthUserAddRequest(name="x16", password="x")),
                      (au.RoleAdd, R.AuthRoleAddRequest(name="x16")),
                      (au.UserGrantRole, R.AuthUserGrantRoleRequest(user="u16", role="root")),
                      (au.UserChangePassword,
                       R.AuthUserChangePasswordRequest(name="u16", password="x")),
                      (au.UserDelete, R.AuthUserDeleteRequest(name="u16other")),
                      (au.RoleGrantPermission, R.AuthRoleGrantPermissionRequest(
                          name="u16-r", perm=auth_pb2.Permission(key=b"k", permType=READWRITE))),
                      (au.AuthEnable, R.AuthEnableRequest())):
        assert fails(call, req, md) == IS_DENIED, req
        assert fails(call, req) == IS_EMPTY, req
    users = au.UserList(R.AuthUserListRequest(), metadata=a.rmd, timeout=10).users
    assert "x16" not in users
    assert {"root", "u16", "u16other"} <= set(users)
    ep = a.c.endpoints
    assert ctl_ok(ep, f"--user=u16:{pw('u16')}", "user", "get", "u16") == \
        "User: u16\nRoles: u16-r\n"
    assert ctl_error(ep, f"--user=u16:{pw('u16')}", "user", "list") == f"Error: {DENIED}"


# ------------------------------------------------------------------ 17-20: KV permissions


def test_read_on_one_key(a: Auth) -> None:
    md = tok(a.user("u17", (READ, b"k17", b"")))
    a.put(b"k17")
    a.put(b"k17a")
    for m in a.c.members:
        kv = a.kv(m)
        assert keys_of(kv.Range(R.RangeRequest(key=b"k17"), metadata=md, timeout=10)) == \
            [b"k17"]
        assert keys_of(kv.Range(R.RangeRequest(key=b"k17", serializable=True), metadata=md,
                                timeout=10)) == [b"k17"]
        assert fails(kv.Range, R.RangeRequest(key=b"k17", range_end=b"k18"), md) == IS_DENIED
        assert fails(kv.Range, R.RangeRequest(key=b"k17a"), md) == IS_DENIED
        assert fails(kv.Range, R.RangeRequest(key=b"k17", range_end=b"\0"), md) == IS_DENIED
        assert fails(kv.Put, R.PutRequest(key=b"k17", value=b"x"), md) == IS_DENIED
        assert fails(kv.DeleteRange, R.DeleteRangeRequest(key=b"k17"), md) == IS_DENIED
    ep, user = a.c.endpoints, f"--user=u17:{pw('u17')}"
    assert ctl_ok(ep, user, "get", "k17") == "k17\nv\n"
    assert ctl_error(ep, user, "get", "k17", "--prefix") == f"Error: {DENIED}"
    assert ctl_error(ep, user, "put", "k17", "x") == f"Error: {DENIED}"


def test_prefix_from_key_and_adjacent_grants(a: Auth) -> None:
    md = tok(a.user("u18", (READ, b"/a/", b"/a0"), (READ, b"r18a", b"r18c"),
                    (READ, b"r18c", b"r18e")))
    for k in (b"/a/1", b"/a/2", b"/a0", b"r18a", b"r18d", b"r18e"):
        a.put(k)
    kv = a.kv(a.c.members[1])
    r = kv.Range(R.RangeRequest(key=b"/a/", range_end=b"/a0"), metadata=md, timeout=10)
    assert keys_of(r) == [b"/a/1", b"/a/2"]
    assert keys_of(kv.Range(R.RangeRequest(key=b"/a/1"), metadata=md, timeout=10)) == \
        [b"/a/1"]
    assert keys_of(kv.Range(R.RangeRequest(key=b"/a/1", range_end=b"/a/3"), metadata=md,
                            timeout=10)) == [b"/a/1", b"/a/2"]
    assert fails(kv.Range, R.RangeRequest(key=b"/a/", range_end=b"\0"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"/a/", range_end=b"/a1"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"/a", range_end=b"/a0"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"/a0"), md) == IS_DENIED
    r = kv.Range(R.RangeRequest(key=b"r18a", range_end=b"r18e"), metadata=md, timeout=10)
    assert keys_of(r) == [b"r18a", b"r18d"]
    assert fails(kv.Range, R.RangeRequest(key=b"r18a", range_end=b"r18f"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"r18", range_end=b"r18e"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"r18e"), md) == IS_DENIED
    ep, user = a.c.endpoints, f"--user=u18:{pw('u18')}"
    assert ctl_ok(ep, user, "get", "/a/", "--prefix", "--keys-only") == "/a/1\n\n/a/2\n\n"
    assert ctl_error(ep, user, "get", "/a/", "--from-key") == f"Error: {DENIED}"


def test_write_only_user(a: Auth) -> None:
    md = tok(a.user("u19", (WRITE, b"w19/", b"w190")))
    kv = a.kv(a.c.members[2])
    kv.Put(R.PutRequest(key=b"w19/a", value=b"1"), metadata=md, timeout=10)
    kv.Put(R.PutRequest(key=b"w19/b", value=b"1"), metadata=md, timeout=10)
    assert fails(kv.Put, R.PutRequest(key=b"w19/a", value=b"2", prev_kv=True), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"w19/a"), md) == IS_DENIED
    assert fails(kv.DeleteRange, R.DeleteRangeRequest(key=b"w19/a", prev_kv=True), md) == \
        IS_DENIED
    assert fails(kv.DeleteRange, R.DeleteRangeRequest(key=b"w19/", range_end=b"w190",
                                                      prev_kv=True), md) == IS_DENIED
    assert fails(kv.DeleteRange, R.DeleteRangeRequest(key=b"w19/", range_end=b"\0"), md) == \
        IS_DENIED
    r = a.kv().Range(R.RangeRequest(key=b"w19/a"), metadata=a.rmd, timeout=10)
    assert [kv.value for kv in r.kvs] == [b"1"]  # the denied put changed nothing
    assert kv.DeleteRange(R.DeleteRangeRequest(key=b"w19/a"), metadata=md,
                          timeout=10).deleted == 1
    assert kv.DeleteRange(R.DeleteRangeRequest(key=b"w19/", range_end=b"w190"), metadata=md,
                          timeout=10).deleted == 1
    ep, user = a.c.endpoints, f"--user=u19:{pw('u19')}"
    assert ctl_ok(ep, user, "put", "w19/c", "1") == "OK\n"
    assert ctl_error(ep, user, "put", "w19/c", "2", "--prev-kv") == f"Error: {DENIED}"
    assert ctl_error(ep, user, "del", "w19/c", "--prev-kv") == f"Error: {DENIED}"
    assert ctl_ok(ep, user, "del", "w19/c") == "1\n"


def _op_put(key: bytes, **kw: Any) -> rpc_pb2.RequestOp:
    return R.RequestOp(request_put=R.PutRequest(key=key, value=b"t", **kw))


def _op_range(key: bytes, end: bytes = b"") -> rpc_pb2.RequestOp:
    return R.RequestOp(request_range=R.RangeRequest(key=key, range_end=end))


def _cmp(key: bytes, version: int = 0) -> rpc_pb2.Compare:
    return R.Compare(key=key, target=R.Compare.VERSION, result=R.Compare.GREATER,
                     version=version)


def test_txn_compares_both_branches_nested_prev_kv_and_lease(a: Auth) -> None:
    md = tok(a.user("u20", (READWRITE, b"t20/", b"t200"), (READ, b"t20r", b""),
                    (WRITE, b"t20w", b"")))
    a.put(b"t20/a")
    a.put(b"t20r")
    a.put(b"t20secret")
    lease = a.grant_lease(60)
    a.put(b"t20leased", lease=lease)
    kv = a.kv(a.c.members[1])
    ok = R.TxnRequest(compare=[_cmp(b"t20/a"), _cmp(b"t20r")],
                      success=[_op_put(b"t20/b"), _op_put(b"t20w"), _op_range(b"t20r")],
                      failure=[_op_range(b"t20/", b"t200")])
    r = kv.Txn(ok, metadata=md, timeout=10)
    assert r.succeeded
    assert [kv.key for kv in r.responses[2].response_range.kvs] == [b"t20r"]
    denied: dict[str, rpc_pb2.TxnRequest] = {
        "compare on an unreadable key": R.TxnRequest(compare=[_cmp(b"t20secret")],
                                                     success=[_op_put(b"t20/c")]),
        "compare on a write-only key": R.TxnRequest(compare=[_cmp(b"t20w")]),
        "compare over a range": R.TxnRequest(
            compare=[R.Compare(key=b"t20/", range_end=b"t21", target=R.Compare.VERSION,
                               result=R.Compare.GREATER, version=0)]),
        "forbidden op in the failure branch, success runs": R.TxnRequest(
            compare=[_cmp(b"t20/a")], success=[_op_put(b"t20/c")],
            failure=[_op_put(b"t20secret")]),
        "forbidden op in the success branch, failure runs": R.TxnRequest(
            compare=[_cmp(b"t20/a", 1000)], success=[_op_range(b"t20secret")],
            failure=[_op_put(b"t20/c")]),
        "nested txn": R.TxnRequest(success=[_op_put(b"t20/c"), R.RequestOp(
            request_txn=R.TxnRequest(success=[R.RequestOp(request_txn=R.TxnRequest(
                failure=[_op_put(b"t20secret")]))]))]),
        "nested txn compare": R.TxnRequest(success=[R.RequestOp(
            request_txn=R.TxnRequest(compare=[_cmp(b"t20secret")]))]),
        "put prev_kv in a txn": R.TxnRequest(success=[_op_put(b"t20w", prev_kv=True)]),
        "put with a lease in a txn": R.TxnRequest(success=[_op_put(b"t20/c", lease=lease)]),
        "delete prev_kv in a txn": R.TxnRequest(success=[R.RequestOp(
            request_delete_range=R.DeleteRangeRequest(key=b"t20w", prev_kv=True))]),
        "write to a read-only key": R.TxnRequest(failure=[_op_put(b"t20r")]),
    }
    for why, req in denied.items():
        assert fails(kv.Txn, req, md) == IS_DENIED, why
    r = a.kv().Range(R.RangeRequest(key=b"t20/c"), metadata=a.rmd, timeout=10)
    assert r.count == 0  # none of the denied txns wrote
    assert ctl_error(a.c.endpoints, f"--user=u20:{pw('u20')}", "txn",
                     stdin='version("t20/a") > "0"\n\nput t20/c x\n\nput t20secret x\n\n') \
        == f"Error: {DENIED}"


# ------------------------------------------------------------------ 21: watch


def test_watch_denial_is_a_canceled_watch_not_a_grpc_error(a: Auth) -> None:
    md = tok(a.user("u21", (READ, b"k21", b""), (READ, b"p21/", b"p210")))
    for m in (a.c.members[0], a.c.members[2]):
        with watching(m.endpoint, md) as w:
            for key, end in ((b"secret21", b""), (b"k21", b"\0"), (b"k21", b"k22"),
                             (b"p21/", b"\0"), (b"p21", b"p210"), (b"", b"\0")):
                w.create(key, end)
                r = w.next()
                assert (r.watch_id, r.created, r.canceled, r.cancel_reason) == (
                    -1, True, True, WATCH_DENIED), (key, end)
            # the stream is still usable: an allowed watch is created and sees events
            w.create(b"k21")
            r = w.next()
            assert r.created
            assert not r.canceled
            wid = r.watch_id
            assert wid >= 0
            w.create(b"p21/", b"p210")
            r2 = w.next()
            assert r2.created
            assert not r2.canceled
            a.put(b"k21", b"seen")
            ev = w.next()
            assert ev.watch_id == wid
            assert [(e.kv.key, e.kv.value) for e in ev.events] == [(b"k21", b"seen")]


BUG_WATCH_NO_TOKEN = (
    "raftkv's interceptor (server/auth.py, RULES '/etcdserverpb.Watch/Watch': user) aborts "
    "the whole Watch stream with a gRPC status when it has no token or a bad one; etcd "
    "(3.4.23 checked) opens the stream and answers each create with a canceled watch -1 "
    "whose cancel_reason is the status text")


def test_watch_without_a_token_or_with_a_bad_one(a: Auth) -> None:
    """etcd opens the stream and cancels each watch with the status text as reason."""
    for md, reason in (((), "rpc error: code = InvalidArgument desc = " + USER_EMPTY),
                       (tok("garbage"), "rpc error: code = Unauthenticated desc = "
                        + INVALID_TOKEN)):
        with watching(a.m0.endpoint, md) as w:
            w.create(b"k21")
            item = w.responses.get(timeout=10)
            assert isinstance(item, rpc_pb2.WatchResponse), item
            assert (item.watch_id, item.created, item.canceled, item.cancel_reason) == (
                -1, True, True, reason)


# ------------------------------------------------------------------ 22: leases


def test_lease_rpcs_check_the_attached_keys(a: Auth) -> None:
    md = tok(a.user("u22", (READWRITE, b"l22/", b"l220")))
    root_lease = a.grant_lease(60)
    a.put(b"secret22", lease=root_lease)
    ls = a.lease(a.c.members[1])
    kv = a.kv(a.c.members[1])
    # attaching a lease that holds an unwritable key
    assert fails(kv.Put, R.PutRequest(key=b"l22/a", value=b"x", lease=root_lease), md) == \
        IS_DENIED
    assert fails(ls.LeaseRevoke, R.LeaseRevokeRequest(ID=root_lease), md) == IS_DENIED
    assert stream_fails(ls.LeaseKeepAlive, iter([R.LeaseKeepAliveRequest(ID=root_lease)]),
                        md) == IS_DENIED
    assert fails(ls.LeaseTimeToLive, R.LeaseTimeToLiveRequest(ID=root_lease, keys=True),
                 md) == IS_DENIED
    assert fails(ls.LeaseLeases, R.LeaseLeasesRequest(), md) == IS_DENIED
    r = ls.LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=root_lease), metadata=md, timeout=10)
    assert (r.ID, r.TTL > 0) == (root_lease, True)
    assert list(r.keys) == []
    # a lease of one's own over one's own keys
    mine = a.grant_lease(60, md)
    kv.Put(R.PutRequest(key=b"l22/a", value=b"x", lease=mine), metadata=md, timeout=10)
    r = ls.LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=mine, keys=True), metadata=md,
                           timeout=10)
    assert list(r.keys) == [b"l22/a"]
    resp = list(ls.LeaseKeepAlive(iter([R.LeaseKeepAliveRequest(ID=mine)]), metadata=md,
                                  timeout=10))
    assert [x.ID for x in resp] == [mine]
    # a key the user cannot write joins its lease: its lease RPCs are denied from then on
    a.put(b"secret22b", lease=mine)
    assert fails(ls.LeaseRevoke, R.LeaseRevokeRequest(ID=mine), md) == IS_DENIED
    assert fails(kv.Put, R.PutRequest(key=b"l22/b", value=b"x", lease=mine), md) == IS_DENIED
    a.kv().DeleteRange(R.DeleteRangeRequest(key=b"secret22b"), metadata=a.rmd, timeout=10)
    ls.LeaseRevoke(R.LeaseRevokeRequest(ID=mine), metadata=md, timeout=10)
    r2 = a.kv().Range(R.RangeRequest(key=b"l22/a"), metadata=a.rmd, timeout=10)
    assert r2.count == 0
    ls.LeaseRevoke(R.LeaseRevokeRequest(ID=root_lease), metadata=a.rmd, timeout=10)
    ep, user = a.c.endpoints, f"--user=u22:{pw('u22')}"
    lid = ctl_ok(ep, user, "lease", "grant", "60").split()[1]
    assert ctl_ok(ep, user, "put", "--lease", lid, "l22/c", "x") == "OK\n"
    assert ctl_ok(ep, user, "lease", "revoke", lid) == f"lease {lid} revoked\n"


BUG_KEEPALIVE_STREAM = (
    "raftkv resolves the caller once per stream (server/auth.py _enter sets PRINCIPAL "
    "with the auth revision at the stream's start) and each LeaseRenew of a LeaseKeepAlive "
    "stream is proposed with it, so after any auth change (an unrelated RoleAdd) the next "
    "keep-alive on an open stream fails with 'revision of auth store is old' and the "
    "stream ends; etcd takes the AuthInfo for each renewal (3.4: no auth check at all)")


def test_an_open_keepalive_stream_survives_an_unrelated_auth_change(a: Auth) -> None:
    md = tok(a.user("u22k", (READWRITE, b"l22k/", b"l22k0")))
    lease = a.grant_lease(30, md)
    a.kv().Put(R.PutRequest(key=b"l22k/a", value=b"x", lease=lease), metadata=md, timeout=10)
    requests: queue.Queue[rpc_pb2.LeaseKeepAliveRequest | None] = queue.Queue()
    stream = a.lease(a.c.members[1]).LeaseKeepAlive(iter(requests.get, None), metadata=md,
                                                    timeout=30)
    try:
        requests.put(R.LeaseKeepAliveRequest(ID=lease))
        assert next(stream).TTL == 30
        a.auth().RoleAdd(R.AuthRoleAddRequest(name="r22k-unrelated"), metadata=a.rmd,
                         timeout=10)
        a.settle()
        requests.put(R.LeaseKeepAliveRequest(ID=lease))
        assert next(stream).TTL == 30
    finally:
        requests.put(None)
        stream.cancel()


@pytest.mark.parametrize(("method", "req"), [
    ("LeaseGrant", R.LeaseGrantRequest(TTL=60)),
    ("LeaseRevoke", R.LeaseRevokeRequest(ID=1)),
    ("LeaseKeepAlive", iter([R.LeaseKeepAliveRequest(ID=1)])),
    ("LeaseTimeToLive", R.LeaseTimeToLiveRequest(ID=1)),
    ("LeaseTimeToLive-keys", R.LeaseTimeToLiveRequest(ID=1, keys=True)),
    ("LeaseLeases", R.LeaseLeasesRequest()),
])
def test_every_lease_rpc_needs_a_token(a: Auth, method: str, req: Any) -> None:
    call = getattr(a.lease(a.c.members[2]), method.split("-")[0])
    check = stream_fails if method == "LeaseKeepAlive" else fails
    assert check(call, req) == IS_EMPTY


# ------------------------------------------------------------------ 23, 24: admin


def _admin_calls(a: Auth) -> dict[str, tuple[Callable[..., Any], Any, bool]]:
    """name -> (call, request, answers with a stream)."""
    mt, cl = a.maint(), a.clus()
    alarm = R.AlarmRequest
    return {
        "Compact": (a.kv().Compact, R.CompactionRequest(revision=1), False),
        "Defragment": (mt.Defragment, R.DefragmentRequest(), False),
        "Snapshot": (mt.Snapshot, R.SnapshotRequest(), True),
        "Hash": (mt.Hash, R.HashRequest(), False),
        "HashKV": (mt.HashKV, R.HashKVRequest(), False),
        "MoveLeader": (mt.MoveLeader, R.MoveLeaderRequest(targetID=1), False),
        "Downgrade": (mt.Downgrade, R.DowngradeRequest(), False),
        "Alarm-ACTIVATE": (mt.Alarm, alarm(action=alarm.ACTIVATE, memberID=1,
                                           alarm=R.NOSPACE), False),
        "Alarm-DEACTIVATE": (mt.Alarm, alarm(action=alarm.DEACTIVATE, memberID=1,
                                             alarm=R.NOSPACE), False),
        "MemberAdd": (cl.MemberAdd, R.MemberAddRequest(peerURLs=["http://127.0.0.1:1"]),
                      False),
        "MemberRemove": (cl.MemberRemove, R.MemberRemoveRequest(ID=1), False),
        "MemberUpdate": (cl.MemberUpdate, R.MemberUpdateRequest(
            ID=1, peerURLs=["http://127.0.0.1:1"]), False),
        "MemberPromote": (cl.MemberPromote, R.MemberPromoteRequest(ID=1), False),
    }


ADMIN = ["Compact", "Defragment", "Snapshot", "Hash", "HashKV", "MoveLeader", "Downgrade",
         "Alarm-ACTIVATE", "Alarm-DEACTIVATE", "MemberAdd", "MemberRemove", "MemberUpdate",
         "MemberPromote"]


@pytest.fixture(scope="module")
def plain(a: Auth) -> str:
    """A token of a user with READWRITE on every key but not root."""
    return a.user("u23", (READWRITE, b"\0", b"\0"))


@pytest.mark.parametrize("name", ADMIN)
def test_admin_rpcs_need_root(a: Auth, plain: str, name: str) -> None:
    call, req, stream = _admin_calls(a)[name]
    check = stream_fails if stream else fails
    assert check(call, req, tok(plain)) == IS_DENIED
    assert check(call, req) == IS_EMPTY


def test_root_runs_the_admin_rpcs(a: Auth, plain: str) -> None:
    calls = _admin_calls(a)
    a.put(b"k23")
    for name in ("Compact", "Hash", "HashKV", "Defragment", "Alarm-DEACTIVATE"):
        call, req, _ = calls[name]
        call(req, metadata=a.rmd, timeout=30)
    chunks = list(a.maint().Snapshot(R.SnapshotRequest(), metadata=a.rmd, timeout=30))
    assert chunks
    ctl_ok(a.c.endpoints, f"--user=root:{pw('root')}", "endpoint", "hashkv")
    r = etcdctl(a.c.endpoints, f"--user=u23:{pw('u23')}", "defrag")
    assert r.returncode != 0
    assert DENIED in r.stderr


@pytest.mark.parametrize("name", ["Alarm-GET", "Status", "MemberList"])
def test_alarm_get_status_member_list_for_any_user(a: Auth, name: str) -> None:
    t = a.user(f"u24{name.lower()}")
    for m in a.c.members:
        mt, cl = a.maint(m), a.clus(m)
        call, req = {
            "Alarm-GET": (mt.Alarm, R.AlarmRequest(action=R.AlarmRequest.GET)),
            "Status": (mt.Status, R.StatusRequest()),
            "MemberList": (cl.MemberList, R.MemberListRequest()),
        }[name]
        r = call(req, metadata=tok(t), timeout=10)
        if name == "MemberList":
            assert len(r.members) == 3
        assert fails(call, req) == IS_EMPTY
        assert fails(call, req, tok("garbage")) == IS_INVALID_TOKEN
    user = f"--user=u24{name.lower()}:{pw(f'u24{name.lower()}')}"
    if name == "Status":
        out = ctl_ok(a.c.endpoints, user, "endpoint", "status")
        assert out.count("\n") == 3
    elif name == "MemberList":
        assert ctl_ok(a.c.endpoints, user, "member", "list").count("\n") == 3
    else:
        assert ctl_ok(a.c.endpoints, user, "alarm", "list") == ""


# ------------------------------------------------------------------ 25: lock


def test_lock_needs_readwrite_on_the_lock_prefix(a: Auth) -> None:
    yes = tok(a.user("u25", (READWRITE, b"jobs25/", b"jobs250")))
    no = tok(a.user("u25no", (READ, b"jobs25/", b"jobs250")))
    wo = tok(a.user("u25wo", (WRITE, b"jobs25/", b"jobs250")))
    none = tok(a.user("u25none", (READWRITE, b"other25/", b"other250")))
    lk = a.lock(a.c.members[1])
    lease = a.grant_lease(30, yes)
    r = lk.Lock(v3lock_pb2.LockRequest(name=b"jobs25", lease=lease), metadata=yes,
                timeout=10)
    assert r.key.startswith(b"jobs25/")
    lk.Unlock(v3lock_pb2.UnlockRequest(key=r.key), metadata=yes, timeout=10)
    for md in (no, wo, none):  # the code: see test_recipe_errors_carry_etcds_code
        own = a.grant_lease(30, md)
        assert fails(lk.Lock, v3lock_pb2.LockRequest(name=b"jobs25", lease=own),
                     md)[1] == DENIED
    assert fails(lk.Lock, v3lock_pb2.LockRequest(name=b"jobs25", lease=lease))[1] == USER_EMPTY
    held = a.kv().Range(R.RangeRequest(key=b"jobs25/", range_end=b"jobs250"),
                        metadata=a.rmd, timeout=10)
    assert held.count == 0  # the denied attempts left no waiter key behind
    assert ctl_ok(a.c.endpoints, f"--user=u25:{pw('u25')}", "lock", "jobs25", "echo",
                  "held") == "held\n"
    r2 = etcdctl(a.c.endpoints, f"--user=u25none:{pw('u25none')}", "lock", "jobs25",
                 "echo", "held", timeout=30)
    assert r2.returncode != 0
    assert DENIED in r2.stderr


def test_election_needs_readwrite_on_the_election_prefix(a: Auth) -> None:
    yes = tok(a.user("u25e", (READWRITE, b"el25/", b"el250")))
    no = tok(a.user("u25eno", (READ, b"el25/", b"el250")))
    el = a.election(a.c.members[2])
    lease = a.grant_lease(30, yes)
    r = el.Campaign(v3election_pb2.CampaignRequest(name=b"el25", lease=lease, value=b"me"),
                    metadata=yes, timeout=10)
    leader = el.Leader(v3election_pb2.LeaderRequest(name=b"el25"), metadata=yes, timeout=10)
    assert leader.kv.value == b"me"
    el.Proclaim(v3election_pb2.ProclaimRequest(leader=r.leader, value=b"me2"), metadata=yes,
                timeout=10)
    own = a.grant_lease(30, no)
    # the code: see test_recipe_errors_carry_etcds_code
    assert fails(el.Campaign, v3election_pb2.CampaignRequest(name=b"el25", lease=own,
                                                             value=b"x"), no)[1] == DENIED
    assert fails(el.Proclaim, v3election_pb2.ProclaimRequest(leader=r.leader, value=b"x"),
                 no)[1] == DENIED
    assert fails(el.Resign, v3election_pb2.ResignRequest(leader=r.leader), no)[1] == DENIED
    assert fails(el.Campaign, v3election_pb2.CampaignRequest(name=b"el25", lease=own,
                                                             value=b"x"))[1] == USER_EMPTY
    el.Resign(v3election_pb2.ResignRequest(leader=r.leader), metadata=yes, timeout=10)


@pytest.fixture(scope="module")
def elected(a: Auth) -> bytes:
    """An election ``el26`` with a leader (root's) whose value is a secret."""
    lease = a.grant_lease(120)
    a.election().Campaign(v3election_pb2.CampaignRequest(name=b"el26", lease=lease,
                                                         value=b"secret-leader-26"),
                          metadata=a.rmd, timeout=10)
    return b"el26"


BUG_ELECTION_READS = (
    "raftkv/server/services/election.py Leader and Observe read the prefix from the state "
    "machine with no permission check: any authenticated user learns any election's "
    "leader key and value; etcd runs them under the caller's identity (a Get of the "
    "prefix), so they need READ on it (etcd 3.4.23: UNKNOWN 'etcdserver: permission "
    "denied' for Leader, an empty stream for Observe)")


def test_election_leader_needs_read_on_the_prefix(a: Auth, elected: bytes) -> None:
    md = tok(a.user("u26l", (READWRITE, b"other26/", b"other260")))
    assert fails(a.election().Leader, v3election_pb2.LeaderRequest(name=elected), md)[1] \
        == DENIED


def test_election_observe_reveals_nothing_without_read_on_the_prefix(
        a: Auth, elected: bytes) -> None:
    md = tok(a.user("u26o", (READWRITE, b"other26/", b"other260")))
    seen = []
    with contextlib.suppress(grpc.RpcError):  # etcd ends the stream; an error would do
        for resp in a.election().Observe(v3election_pb2.LeaderRequest(name=elected),
                                         metadata=md, timeout=3):
            seen.append(resp.kv.value)
    assert seen == []


def test_campaign_needs_read_on_the_whole_prefix(a: Auth) -> None:
    md = tok(a.user("u26c"))
    lease = a.grant_lease(30, md)
    key = b"el26c/" + f"{lease:x}".encode()
    a.grant("u26c-r", READWRITE, key)
    a.settle()
    assert fails(a.election().Campaign, v3election_pb2.CampaignRequest(
        name=b"el26c", lease=lease, value=b"x"), md)[1] == DENIED


def test_recipe_errors_carry_etcds_code(a: Auth) -> None:
    md = tok(a.user("u26r", (READ, b"jobs26/", b"jobs260")))
    lease = a.grant_lease(30, md)
    got = [fails(a.lock().Lock, v3lock_pb2.LockRequest(name=b"jobs26", lease=lease), md),
           fails(a.lock().Lock, v3lock_pb2.LockRequest(name=b"jobs26", lease=lease)),
           fails(a.election().Campaign, v3election_pb2.CampaignRequest(
               name=b"jobs26", lease=lease, value=b"x"), md)]
    assert got == [(C.UNKNOWN, DENIED), (C.UNKNOWN, USER_EMPTY), (C.UNKNOWN, DENIED)]


# ------------------------------------------------------------------ 27: revocation


def test_a_revoke_blocks_the_very_next_request_on_an_open_connection(a: Auth) -> None:
    md = tok(a.user("u27", (READWRITE, b"k27", b"")))
    a.put(b"k27")
    req = R.RangeRequest(key=b"k27")
    put = R.PutRequest(key=b"k27", value=b"x")
    for m in a.c.members:  # warm every member's channel (the connection the test reuses)
        assert a.kv(m).Range(req, metadata=md, timeout=10).count == 1
    with watching(a.c.members[2].endpoint, md) as w:
        w.create(b"k27")
        assert w.next().created
        for revoker in a.c.members:
            a.auth(revoker).RoleRevokePermission(
                R.AuthRoleRevokePermissionRequest(role="u27-r", key=b"k27"),
                metadata=a.rmd, timeout=10)
            kv = a.kv(revoker)
            assert fails(kv.Range, req, md) == IS_DENIED, revoker.name
            assert fails(kv.Put, put, md) == IS_DENIED, revoker.name
            assert fails(kv.Range, R.RangeRequest(key=b"k27", serializable=True), md) == \
                IS_DENIED, revoker.name
            for m in a.c.members:
                # refused everywhere at once; a member that had not applied the revoke
                # when the request came may say so (etcd's in-flight race for writes;
                # for reads see test_a_read_on_a_follower_right_after_an_auth_change...)
                assert fails(a.kv(m).Range, req, md) in (IS_DENIED, IS_OLD_REVISION), m.name
                assert fails(a.kv(m).Put, put, md) in (IS_DENIED, IS_OLD_REVISION), m.name
            a.grant("u27-r", READWRITE, b"k27")
            a.settle()
            for m in a.c.members:
                assert a.kv(m).Range(req, metadata=md, timeout=10).count == 1
                a.kv(m).Put(R.PutRequest(key=b"k27", value=b"y"), metadata=md, timeout=10)
        # an established watch is not re-authorized (etcd: "eventually consistent by
        # design"); a new watch on the same stream is checked
        a.auth().RoleRevokePermission(
            R.AuthRoleRevokePermissionRequest(role="u27-r", key=b"k27"),
            metadata=a.rmd, timeout=10)
        a.settle()
        w.create(b"k27")
        while True:
            r = w.next()
            if r.created:
                break
        assert (r.watch_id, r.canceled, r.cancel_reason) == (-1, True, WATCH_DENIED)


BUG_READ_REVISION = (
    "raftkv resolves the caller's auth revision before the read barrier "
    "(server/auth.py Gate.resolve in the interceptor) and check_read compares it with the "
    "store's after it, so a linearizable Range on a member that applies any auth change "
    "during its barrier fails with 'revision of auth store is old'; etcd's doSerialize "
    "takes the AuthInfo after linearizableReadNotify")


def test_a_read_on_a_follower_right_after_an_auth_change_sees_it(a: Auth) -> None:
    """A linearizable read reflects every write acknowledged before it, auth changes
    included: a read that reaches a follower before the follower has applied an auth change
    made through the leader is answered by the new auth state once the barrier has passed
    (etcd takes the caller's AuthInfo after linearizableReadNotify). The follower is paused
    (SIGSTOP) for 0.15 s so that the read arrives before the change is applied there."""
    md = tok(a.user("u26", (READ, b"k26", b"")))
    a.put(b"k26")
    lead = a.c.leader()
    fs = [m for m in a.c.members if m is not lead]
    req = R.RangeRequest(key=b"k26")

    def read_behind(i: int, change: Callable[[], object]) -> object:
        f = fs[i % 2]
        assert f.proc is not None
        a.kv(f).Range(R.RangeRequest(key=b"k26", serializable=True), metadata=a.rmd,
                      timeout=10)  # the channel is connected
        f.proc.send_signal(signal.SIGSTOP)
        try:
            change()
            fut = a.kv(f).Range.future(req, metadata=md, timeout=10)
            time.sleep(0.15)
        finally:
            f.proc.send_signal(signal.SIGCONT)
        try:
            return len(fut.result().kvs)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()

    def add_role(name: str) -> Callable[[], object]:
        return lambda: a.auth(lead).RoleAdd(R.AuthRoleAddRequest(name=name), metadata=a.rmd,
                                            timeout=10)

    def revoke() -> object:
        return a.auth(lead).RoleRevokePermission(
            R.AuthRoleRevokePermissionRequest(role="u26-r", key=b"k26"), metadata=a.rmd,
            timeout=10)

    # an unrelated change: the read is answered
    got = [read_behind(i, add_role(f"r26-{i}")) for i in range(10)]
    # the user's own permission goes: the read is denied
    for i in range(2):
        a.settle()
        got.append(read_behind(i, revoke))
        a.grant("u26-r", READ, b"k26")
    assert got == [1] * 10 + [IS_DENIED] * 2, got


# ------------------------------------------------------------------ 28: no password


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())


def _leaks(roots: list[Path], secrets_: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for path in _files(*roots):
        data = path.read_bytes()
        found += [(who, str(path)) for who, s in secrets_.items() if s.encode() in data]
    return found


def _member_paths(c: ProcCluster) -> list[Path]:
    return [p for m in c.members for p in (m.data_dir, m.log_path)]


def test_no_password_in_data_dirs_or_debug_logs(a: Auth) -> None:
    ep, ruser = a.c.endpoints, f"--user=root:{pw('root')}"
    canary = "Cn" + secrets.token_hex(12)
    a.put(b"k28", canary.encode())  # the search does find what is there
    a.user("u28", (READ, b"k28", b""))
    ctl_ok(ep, ruser, "user", "add", f"u28ctl:{pw('u28ctl')}")
    ctl_ok(ep, ruser, "user", "grant-role", "u28ctl", "u28-r")
    ctl_ok(ep, f"--user=u28ctl:{pw('u28ctl')}", "get", "k28")
    new = pw("u28new")
    r = etcdctl(ep, ruser, "user", "passwd", "u28ctl", "--interactive=false", stdin=new + "\n")
    assert r.returncode == 0, r.stderr
    a.login("u28ctl", password=new)
    for m in a.c.members:
        fails(a.auth(m).Authenticate, R.AuthenticateRequest(name="u28", password=pw("u28bad")))
        fails(a.auth(m).Authenticate,
              R.AuthenticateRequest(name="nobody28", password=pw("u28bad2")))
    time.sleep(0.2)  # the log lines of the last requests
    paths = _member_paths(a.c)
    assert _leaks(paths, {"canary": canary}), "the search finds nothing at all"
    assert _leaks(paths, PASSWORDS) == []
    assert _leaks(paths, {"root token": a.root.rpartition(".")[0]}) == []


# ------------------------------------------------------------------ 29: restart, snapshot


def _status_of(a: Auth, m: Member) -> tuple[bool, int, list[str], list[str]]:
    au = a.auth(m)
    st = au.AuthStatus(R.AuthStatusRequest(), timeout=10)
    users = au.UserList(R.AuthUserListRequest(), metadata=a.rmd, timeout=10).users
    roles = au.RoleList(R.AuthRoleListRequest(), metadata=a.rmd, timeout=10).roles
    return st.enabled, int(st.authRevision), list(users), list(roles)


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def _alice_checks(a: Auth, m: Member, t: str) -> None:
    kv = a.kv(m)
    md = tok(t)
    assert keys_of(kv.Range(R.RangeRequest(key=b"s29/a"), metadata=md, timeout=10)) == \
        [b"s29/a"]
    kv.Put(R.PutRequest(key=b"s29/b", value=b"x"), metadata=md, timeout=10)
    assert fails(kv.Range, R.RangeRequest(key=b"bulk/0"), md) == IS_DENIED
    assert fails(kv.Put, R.PutRequest(key=b"bulk/0", value=b"x"), md) == IS_DENIED
    assert fails(kv.Range, R.RangeRequest(key=b"s29/a")) == IS_EMPTY
    assert fails(a.auth(m).Authenticate,
                 R.AuthenticateRequest(name="alice29", password="wrong")) == (
        C.INVALID_ARGUMENT, AUTH_FAILED)
    assert fails(a.auth(m).UserList, R.AuthUserListRequest(), md) == IS_DENIED


def test_auth_survives_restart_and_snapshot_install_and_leases_still_expire(
        tmp_path: Path) -> None:
    flags = (*FAST, "--snapshot-count", "200", "--snapshot-catchup-entries", "50")
    with auth_cluster(tmp_path, 3, flags) as pc:
        pc.leader()
        a = Auth(pc)
        enable_auth(a)
        t = a.user("alice29", (READWRITE, b"s29/", b"s290"))
        a.put(b"s29/a")
        lagging = followers(a)[0]
        pc.kill(lagging, signal.SIGTERM)
        live = [m for m in pc.members if m is not lagging]
        a.home = live[0]
        # a lease of alice's, granted and used while the member is down, kept alive
        lease = a.grant_lease(3, tok(t))
        a.kv().Put(R.PutRequest(key=b"s29/leased", value=b"x", lease=lease), metadata=tok(t),
                   timeout=10)
        stop = threading.Event()

        def keep_alive() -> None:
            ls = a.lease(live[0])
            while not stop.is_set():
                try:
                    list(ls.LeaseKeepAlive(iter([R.LeaseKeepAliveRequest(ID=lease)]),
                                           metadata=tok(t), timeout=10))
                except grpc.RpcError as exc:  # etcd's in-flight race with the auth
                    # changes below: the renewal was stamped before one of them applied
                    if (exc.code(), exc.details()) != IS_OLD_REVISION:
                        raise
                    continue
                stop.wait(0.4)

        keeper = threading.Thread(target=keep_alive, daemon=True)
        keeper.start()
        try:
            # the auth state changes while it is down, and the log moves past its snapshot
            a.user("bob29", (READ, b"s29/", b"s290"))
            kv = a.kv(live[0])
            futures = [kv.Put.future(R.PutRequest(key=f"bulk/{i}".encode(), value=b"v"),
                                     metadata=a.rmd, timeout=60) for i in range(650)]
            for f in futures:
                f.result()
            pc.start(lagging)
            _wait(lambda: "installed snapshot" in lagging.log_path.read_text(errors="replace"),
                  60, f"{lagging.name} installs a snapshot")
            pc.wait_up(lagging)
            st = pc.status(live[0])
            assert st is not None
            pc.wait_applied(lagging, st.raftAppliedIndex)
            # the member that installed the snapshot authenticates and enforces
            assert _status_of(a, lagging) == _status_of(a, live[0])
            _alice_checks(a, lagging, a.login("alice29", lagging))
            # a token issued before it went down: raftkv keeps tokens in the replicated
            # store (etcd's simple tokens live in memory and a restart loses them, #9629)
            _alice_checks(a, lagging, t)
            tb = a.login("bob29", lagging)
            assert fails(a.kv(lagging).Put, R.PutRequest(key=b"s29/x", value=b"x"),
                         tok(tb)) == IS_DENIED
            # it leads, and alice's lease expires on its watch
            lead = pc.leader()
            if lead is not lagging:
                a.maint(lead).MoveLeader(R.MoveLeaderRequest(targetID=lagging.member_id),
                                         metadata=a.rmd, timeout=30)
                _wait(lambda: pc.leader() is lagging, 30, f"{lagging.name} leads")
            r = a.lease(lagging).LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=lease),
                                                 metadata=tok(t), timeout=10)
            assert r.TTL > 0
        finally:
            stop.set()
            keeper.join(timeout=15)

        def gone() -> bool:
            return all(a.kv(m).Range(R.RangeRequest(key=b"s29/leased"), metadata=a.rmd,
                                     timeout=10).count == 0 for m in pc.members)

        _wait(gone, 20, "alice's lease expires and deletes its key")
        r = a.lease(lagging).LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=lease),
                                             metadata=tok(t), timeout=10)
        assert r.TTL == -1
        before = _status_of(a, pc.members[0])
        assert before[0]
        # a restart of every member keeps all of it
        pc.stop_all()
        pc.channels.clear()
        pc.start_all()
        pc.leader()
        a.root = a.login("root")
        for m in pc.members:
            assert _status_of(a, m) == before, m.name
            _alice_checks(a, m, a.login("alice29", m))
        ul = a.auth().UserGet(R.AuthUserGetRequest(name="alice29"), metadata=a.rmd,
                              timeout=10)
        assert list(ul.roles) == ["alice29-r"]
        perms = a.auth().RoleGet(R.AuthRoleGetRequest(role="alice29-r"), metadata=a.rmd,
                                 timeout=10).perm
        assert [(p.permType, p.key, p.range_end) for p in perms] == [
            (READWRITE, b"s29/", b"s290")]
        log = lagging.log_path.read_text(errors="replace")
        assert "installed snapshot" in log
    # 28 again, with the members stopped: no password in their files or logs
    assert _leaks(_member_paths(pc), PASSWORDS) == []
