"""With --client-cert-auth and auth on, a verified client certificate's CN is the user when
no token is sent; a token, when present, wins; a --no-password user cannot Authenticate
(reference §1.4, §7 case 35)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from raftkv import certs
from raftkv import errors as e
from raftkv.wire.pb.authpb import auth_pb2
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import ProcCluster


def _channel(d: Path, who: str, port: int) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes(),
                                         (d / f"{who}-key.pem").read_bytes(),
                                         (d / f"{who}.pem").read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{port}", creds)


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProcCluster, Path]]:
    root = tmp_path_factory.mktemp("cn")
    d = root / "certs"
    certs.init_cluster(d, ["n1"], clients=["client", "root", "alice", "carol"])
    c = ProcCluster(root, 1, flags=("--bcrypt-cost", "4"), tls_dir=d)
    c.start_all()
    try:
        c.leader()
        port = c.members[0].client_port
        with _channel(d, "client", port) as ch:
            a = rpc_pb2_grpc.AuthStub(ch)  # type: ignore[no-untyped-call]
            a.UserAdd(rpc_pb2.AuthUserAddRequest(
                name="root", options=auth_pb2.UserAddOptions(no_password=True)))
            a.UserGrantRole(rpc_pb2.AuthUserGrantRoleRequest(user="root", role="root"))
            a.UserAdd(rpc_pb2.AuthUserAddRequest(name="alice", password="apw"))
            a.RoleAdd(rpc_pb2.AuthRoleAddRequest(name="r"))
            a.RoleGrantPermission(rpc_pb2.AuthRoleGrantPermissionRequest(
                name="r", perm=auth_pb2.Permission(permType=auth_pb2.Permission.READWRITE,
                                                   key=b"alice/", range_end=b"alice0")))
            a.UserGrantRole(rpc_pb2.AuthUserGrantRoleRequest(user="alice", role="r"))
            a.AuthEnable(rpc_pb2.AuthEnableRequest())
        yield c, d
    finally:
        c.stop_all()


def _put(d: Path, who: str, port: int, key: bytes,
         token: str | None = None) -> grpc.StatusCode | None:
    md = (("token", token),) if token else None
    with _channel(d, who, port) as ch:
        kv = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
        try:
            kv.Put(rpc_pb2.PutRequest(key=key, value=b"v"), metadata=md, timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    return None


def test_the_certificate_cn_is_the_user_without_a_token(
        member: tuple[ProcCluster, Path]) -> None:
    c, d = member
    port = c.members[0].client_port
    assert _put(d, "alice", port, b"alice/1") is None
    assert _put(d, "alice", port, b"bob/1") == grpc.StatusCode.PERMISSION_DENIED
    assert _put(d, "root", port, b"anything") is None  # a no-password user, by its CN
    # a CN that is no user: permission denied, as etcd (not in the permission cache)
    assert _put(d, "carol", port, b"alice/2") == grpc.StatusCode.PERMISSION_DENIED


def test_a_token_wins_over_the_certificate(member: tuple[ProcCluster, Path]) -> None:
    c, d = member
    port = c.members[0].client_port
    with _channel(d, "root", port) as ch:
        tok = rpc_pb2_grpc.AuthStub(ch).Authenticate(  # type: ignore[no-untyped-call]
            rpc_pb2.AuthenticateRequest(name="alice", password="apw"), timeout=10).token
    # root's certificate, alice's token: alice's rights
    assert _put(d, "root", port, b"elsewhere", token=tok) == grpc.StatusCode.PERMISSION_DENIED
    assert _put(d, "root", port, b"alice/3", token=tok) is None


def test_a_no_password_user_cannot_authenticate(member: tuple[ProcCluster, Path]) -> None:
    c, d = member
    with _channel(d, "client", c.members[0].client_port) as ch, \
            pytest.raises(grpc.RpcError) as info:
        rpc_pb2_grpc.AuthStub(ch).Authenticate(  # type: ignore[no-untyped-call]
            rpc_pb2.AuthenticateRequest(name="root", password="x"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert info.value.details() == e.AUTH_NO_PASSWORD_USER
