"""``etcdserverpb.Maintenance`` with real member processes and the real etcdctl: endpoint
status and hashkv across the cluster, move-leader, snapshot save (etcd's stream format),
alarms (NOSPACE by hand and from ``--quota-backend-bytes``) and defrag."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from raftkv.server.services.maintenance import unpack_snapshot
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import Member, ProcCluster, cluster, etcdctl

pytestmark = pytest.mark.slow
NO_SPACE = "etcdserver: mvcc: database space exceeded"


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def cluster_endpoints(c: ProcCluster) -> str:
    """Wait until every member has published its client URLs (``--cluster`` needs them)."""
    def published() -> bool:
        r = etcdctl(c.endpoints, "member", "list")
        rows = [line.split(", ") for line in r.stdout.strip().splitlines()]
        return len(rows) == len(c.members) and all(row[4] for row in rows)
    eventually(published, "members publish their client URLs")
    return c.endpoints


def test_status_hashkv_move_leader_snapshot_defrag(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.leader()
        eps = cluster_endpoints(c)
        for i in range(20):
            assert etcdctl(eps, "put", f"k{i}", f"v{i}").returncode == 0
        mid_rev = _revision(c)
        for i in range(20):
            assert etcdctl(eps, "put", f"k{i}", f"w{i}").returncode == 0
        _hashkv(c, mid_rev)
        _status(c)
        _move_leader(c)
        _snapshot(c, tmp_path / "f.db")
        r = etcdctl(eps, "defrag")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("Finished defragmenting etcd member") == 3
        got = etcdctl(eps, "get", "k7", "--print-value-only")
        assert got.stdout.strip() == "w7", "data survives defrag"


def _revision(c: ProcCluster) -> int:
    st = c.status(c.leader())
    assert st is not None
    return int(st.header.revision)


def _hashkv(c: ProcCluster, mid_rev: int) -> None:
    def hashes(*extra: str) -> list[str]:
        r = etcdctl(c.endpoints, "endpoint", "hashkv", "--cluster", *extra)
        assert r.returncode == 0, r.stderr
        return [line.split(", ")[1] for line in r.stdout.strip().splitlines()]
    now = hashes()
    assert len(now) == 3
    assert len(set(now)) == 1, f"hashkv differs between members: {now}"
    old = hashes(f"--rev={mid_rev}")
    assert len(set(old)) == 1, f"hashkv at {mid_rev} differs between members: {old}"
    assert old[0] != now[0], "hashkv ignores the revision"
    stub = c.maint(c.members[0])
    with pytest.raises(grpc.RpcError) as err:
        stub.HashKV(rpc_pb2.HashKVRequest(revision=10**6), timeout=5)
    assert err.value.details() == "etcdserver: mvcc: required revision is a future revision"


def _status(c: ProcCluster) -> None:
    r = etcdctl(c.endpoints, "endpoint", "status", "--cluster")
    assert r.returncode == 0, r.stderr
    rows = [line.split(", ") for line in r.stdout.strip().splitlines()]
    assert len(rows) == 3
    assert sorted(row[4] for row in rows) == ["false", "false", "true"]
    assert {row[0] for row in rows} == {f"http://{m.endpoint}" for m in c.members}


def _move_leader(c: ProcCluster) -> None:
    lead = c.leader()
    follower = next(m for m in c.members if m is not lead)
    with pytest.raises(grpc.RpcError) as err:
        c.maint(follower).MoveLeader(rpc_pb2.MoveLeaderRequest(targetID=lead.member_id),
                                     timeout=5)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "etcdserver: not leader"
    with pytest.raises(grpc.RpcError) as err:
        c.maint(lead).MoveLeader(rpc_pb2.MoveLeaderRequest(targetID=12345), timeout=5)
    assert err.value.details() == "etcdserver: bad leader transferee"
    r = etcdctl(c.endpoints, "move-leader", f"{follower.member_id:x}")
    assert r.returncode == 0, r.stderr
    assert (f"Leadership transferred from {lead.member_id:x} to {follower.member_id:x}"
            in r.stdout)
    assert c.leader() is follower
    assert etcdctl(c.endpoints, "put", "after-move", "ok").returncode == 0


def _snapshot(c: ProcCluster, path: Path) -> None:
    r = etcdctl(c.members[1].endpoint, "snapshot", "save", str(path))
    assert r.returncode == 0, r.stderr
    assert f"Snapshot saved at {path}" in r.stdout
    blob = path.read_bytes()
    assert len(blob) % 512 == 32
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
    data = unpack_snapshot(blob)
    assert b"k19" in data
    assert b"w19" in data


def _check_writes_gated(c: ProcCluster, m: Member) -> None:
    """Under NOSPACE: a txn with a put (even nested) and LeaseGrant are refused with etcd's
    status; a txn that only reads or deletes is served."""
    put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"x", value=b"y"))
    nested = rpc_pb2.RequestOp(request_txn=rpc_pb2.TxnRequest(failure=[put]))
    for txn in (rpc_pb2.TxnRequest(success=[put]), rpc_pb2.TxnRequest(success=[nested])):
        with pytest.raises(grpc.RpcError) as err:
            c.kv(m).Txn(txn, timeout=5)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details() == NO_SPACE
    delete = rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"x"))
    c.kv(m).Txn(rpc_pb2.TxnRequest(success=[delete]), timeout=5)
    lease = rpc_pb2_grpc.LeaseStub(c._channel(m))  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.RpcError) as err:
        lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=10), timeout=5)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_alarms_and_quota(tmp_path: Path) -> None:
    with cluster(tmp_path, size=1, flags=("--quota-backend-bytes", "60000")) as c:
        (m,) = c.members
        c.leader()
        eps = cluster_endpoints(c)
        r = etcdctl(eps, "alarm", "list")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == ""
        # By hand: activate NOSPACE, writes refused, reads and deletes served, disarm.
        c.maint(m).Alarm(rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.ACTIVATE,
                                              memberID=m.member_id, alarm=rpc_pb2.NOSPACE),
                         timeout=5)
        assert "alarm:NOSPACE" in etcdctl(eps, "alarm", "list").stdout
        r = etcdctl(eps, "put", "x", "y")
        assert r.returncode != 0
        assert NO_SPACE in r.stderr
        assert etcdctl(eps, "get", "x").returncode == 0
        assert etcdctl(eps, "del", "x").returncode == 0
        _check_writes_gated(c, m)
        r = etcdctl(eps, "alarm", "disarm")
        assert r.returncode == 0, r.stderr
        assert etcdctl(eps, "alarm", "list").stdout.strip() == ""
        assert etcdctl(eps, "put", "x", "y").returncode == 0
        # From the quota: fill the backend past --quota-backend-bytes.
        value = "v" * 2000
        for i in range(60):
            if NO_SPACE in etcdctl(eps, "put", f"big{i}", value).stderr:
                break

        def raised() -> bool:
            return "alarm:NOSPACE" in etcdctl(eps, "alarm", "list").stdout
        eventually(raised, "NOSPACE raised over the quota")
        r = etcdctl(eps, "put", "more", "data")
        assert NO_SPACE in r.stderr, r.stderr
        st = c.status(m)
        assert st is not None
        assert any("NOSPACE" in e for e in st.errors)
