"""``v3lockpb.Lock`` and ``v3electionpb.Election`` on a 3-member cluster of real processes.

Two paths are exercised, as etcd-api.md §6-7 and etcdctl-calls.md describe them:

* the server-side services through raw gRPC stubs (what non-etcdctl clients use): mutual
  exclusion between concurrent callers on different members, waiters woken by their
  predecessor only, fencing tokens (create revisions) that strictly increase and guard a txn,
  a waiter whose lease is revoked, and the election RPCs with etcd's error texts;
* the real ``etcdctl lock`` / ``etcdctl elect`` 3.4, which build the same recipes client-side
  from KV + Lease + Watch; they share the key scheme with the services, so both interoperate.

Leases are granted through the cluster's ``etcdserverpb.Lease/LeaseGrant`` RPC.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftkv.wire.pb.v3electionpb import v3election_pb2 as epb
from raftkv.wire.pb.v3electionpb import v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2, v3lock_pb2_grpc
from tests.integration.procs import Member, ProcCluster, cluster

pytestmark = pytest.mark.slow

T = TypeVar("T")
CREATE = rpc_pb2.Compare.CompareTarget.CREATE
EQUAL = rpc_pb2.Compare.CompareResult.EQUAL


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    with cluster(tmp_path_factory.mktemp("lock")) as pc:
        pc.leader()
        for m in pc.members:
            pc.wait_up(m)  # every channel is connected (none left in reconnect back-off)
        yield pc


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as ex:
        yield ex


def lock_stub(c: ProcCluster, m: Member) -> v3lock_pb2_grpc.LockStub:
    return v3lock_pb2_grpc.LockStub(c._channel(m))  # type: ignore[no-untyped-call]


def election_stub(c: ProcCluster, m: Member) -> v3election_pb2_grpc.ElectionStub:
    return v3election_pb2_grpc.ElectionStub(c._channel(m))  # type: ignore[no-untyped-call]


def lease_stub(c: ProcCluster, m: Member) -> rpc_pb2_grpc.LeaseStub:
    return rpc_pb2_grpc.LeaseStub(c._channel(m))  # type: ignore[no-untyped-call]


def live(c: ProcCluster, skip: int = 0) -> Member:
    """A running member (the ``skip``-th one)."""
    return [m for m in c.members if m.alive()][skip]


def grant(c: ProcCluster, ttl: int = 60) -> int:
    resp = lease_stub(c, live(c)).LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=10)
    return int(resp.ID)


def revoke(c: ProcCluster, lease: int) -> None:
    lease_stub(c, live(c)).LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease), timeout=10)


def create_rev(c: ProcCluster, key: bytes) -> int:
    kvs = c.kv(live(c)).Range(rpc_pb2.RangeRequest(key=key), timeout=10).kvs
    return int(kvs[0].create_revision) if kvs else 0


def lock(c: ProcCluster, m: Member, name: bytes, lease: int,
         timeout: float = 30) -> v3lock_pb2.LockResponse:
    resp: v3lock_pb2.LockResponse = lock_stub(c, m).Lock(
        v3lock_pb2.LockRequest(name=name, lease=lease), timeout=timeout)
    return resp


def unlock(c: ProcCluster, m: Member, key: bytes) -> None:
    lock_stub(c, m).Unlock(v3lock_pb2.UnlockRequest(key=key), timeout=10)


def fenced_put(c: ProcCluster, lock_key: bytes, token: int, key: bytes, value: bytes) -> bool:
    """A guarded write: put only while ``lock_key`` is the incarnation created at ``token``."""
    txn = rpc_pb2.TxnRequest(
        compare=[rpc_pb2.Compare(key=lock_key, target=CREATE, result=EQUAL,
                                 create_revision=token)],
        success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))])
    return bool(c.kv(live(c, 1)).Txn(txn, timeout=10).succeeded)


def still_waiting(fut: Future[T], for_s: float = 1.5) -> bool:
    time.sleep(for_s)
    return not fut.done()


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# --------------------------------------------------------------------------- Lock via gRPC


def test_lock_excludes_and_hands_over_on_unlock_with_growing_fencing_tokens(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    l1, l2 = grant(c), grant(c)
    a, b = c.members[0], c.members[2]
    first = lock(c, a, b"mutex1", l1)
    assert first.key == b"mutex1/" + format(l1, "x").encode()
    token1 = create_rev(c, first.key)
    assert 0 < token1 <= first.header.revision
    # Idempotent for the same lease: same key, same token, no new revision.
    again = lock(c, b, b"mutex1", l1)
    assert again.key == first.key
    assert create_rev(c, first.key) == token1

    second = pool.submit(lock, c, b, b"mutex1", l2)
    assert still_waiting(second), "a second lease acquired a held lock"
    assert fenced_put(c, first.key, token1, b"fenced1", b"by-1")

    unlock(c, a, first.key)
    key2 = second.result(timeout=15).key
    token2 = create_rev(c, key2)
    assert key2 == b"mutex1/" + format(l2, "x").encode()
    assert token2 > token1
    # The old holder's token no longer guards anything; the new one does.
    assert not fenced_put(c, first.key, token1, b"fenced1", b"stale")
    assert fenced_put(c, key2, token2, b"fenced1", b"by-2")
    value = c.kv(a).Range(rpc_pb2.RangeRequest(key=b"fenced1"), timeout=10).kvs[0].value
    assert value == b"by-2"
    unlock(c, b, key2)


def test_revoking_the_holders_lease_hands_the_lock_over(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    l1, l2 = grant(c), grant(c)
    first = lock(c, c.members[1], b"mutex2", l1)
    token1 = create_rev(c, first.key)
    second = pool.submit(lock, c, c.members[2], b"mutex2", l2)
    assert still_waiting(second)
    revoke(c, l1)
    key2 = second.result(timeout=15).key
    assert create_rev(c, key2) > token1
    assert not fenced_put(c, first.key, token1, b"fenced2", b"stale")
    revoke(c, l2)


def test_waiters_wait_on_their_predecessor_in_create_order(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    la, lb, lc = grant(c), grant(c), grant(c)
    holder = lock(c, c.members[0], b"mutex3", la)
    wb = pool.submit(lock, c, c.members[1], b"mutex3", lb)
    assert still_waiting(wb, 1.0)
    wc = pool.submit(lock, c, c.members[2], b"mutex3", lc)
    assert still_waiting(wc, 1.0)
    kb = b"mutex3/" + format(lb, "x").encode()
    assert create_rev(c, kb) < create_rev(c, b"mutex3/" + format(lc, "x").encode())
    # The middle waiter leaves: the last one now waits on the holder, and must not acquire.
    unlock(c, c.members[0], kb)
    assert still_waiting(wc)
    assert isinstance(wb.exception(timeout=15), grpc.RpcError)  # its own key vanished
    unlock(c, c.members[0], holder.key)
    assert wc.result(timeout=15).key.endswith(format(lc, "x").encode())
    for lease in (la, lb, lc):
        revoke(c, lease)


def test_a_waiter_whose_lease_is_revoked_gets_session_expired(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    l1, l2 = grant(c), grant(c)
    holder = lock(c, c.members[0], b"mutex4", l1)
    waiter = pool.submit(lock, c, c.members[1], b"mutex4", l2)
    assert still_waiting(waiter)
    revoke(c, l2)
    exc = waiter.exception(timeout=15)
    assert isinstance(exc, grpc.RpcError)
    assert exc.code() is grpc.StatusCode.UNKNOWN
    assert exc.details() == "mutex: session is expired"
    unlock(c, c.members[0], holder.key)
    revoke(c, l1)


def test_a_cancelled_waiter_removes_its_key(c: ProcCluster) -> None:
    l1, l2 = grant(c), grant(c)
    holder = lock(c, c.members[0], b"mutex5", l1)
    exc = rpc_error(lambda: lock(c, c.members[1], b"mutex5", l2, timeout=1.0))
    assert exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    key2 = b"mutex5/" + format(l2, "x").encode()
    deadline = time.monotonic() + 10
    while create_rev(c, key2) != 0:
        assert time.monotonic() < deadline, "the abandoned waiter key was left behind"
        time.sleep(0.1)
    unlock(c, c.members[0], holder.key)
    for lease in (l1, l2):
        revoke(c, lease)


def test_lock_errors(c: ProcCluster) -> None:
    exc = rpc_error(lambda: lock(c, c.members[0], b"mutex6", 0x7E57))
    assert exc.code() is grpc.StatusCode.NOT_FOUND
    assert exc.details() == "etcdserver: requested lease not found"
    assert create_rev(c, b"mutex6/7e57") == 0
    # Lease 0: the server grants an orphaned 60 s session lease, as etcd does.
    resp = lock(c, c.members[1], b"mutex6", 0)
    lease = int(resp.key.removeprefix(b"mutex6/"), 16)
    ttl = lease_stub(c, c.members[2]).LeaseTimeToLive(
        rpc_pb2.LeaseTimeToLiveRequest(ID=lease, keys=True), timeout=10)
    assert ttl.grantedTTL == 60
    assert list(ttl.keys) == [resp.key]
    revoke(c, lease)
    exc = rpc_error(lambda: unlock(c, c.members[0], b""))
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert exc.details() == "etcdserver: key is not provided"


# --------------------------------------------------------------------------- Election via gRPC


def observe(c: ProcCluster, m: Member, name: bytes, seen: list[bytes]) -> grpc.RpcContext:
    """Start an Observe stream on ``m``; a thread appends each leader value to ``seen``."""
    stream = election_stub(c, m).Observe(epb.LeaderRequest(name=name))

    def drain() -> None:
        try:
            for resp in stream:
                seen.append(resp.kv.value)
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.CANCELLED:
                seen.append(f"error {exc.code()} {exc.details()}".encode())

    threading.Thread(target=drain, daemon=True).start()
    return stream  # type: ignore[no-any-return]


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def campaign(c: ProcCluster, m: Member, name: bytes, lease: int,
             value: bytes) -> epb.CampaignResponse:
    resp: epb.CampaignResponse = election_stub(c, m).Campaign(
        epb.CampaignRequest(name=name, lease=lease, value=value), timeout=30)
    return resp


def leader_value(c: ProcCluster, m: Member, name: bytes) -> bytes:
    return bytes(election_stub(c, m).Leader(epb.LeaderRequest(name=name), timeout=10).kv.value)


def test_election_campaign_proclaim_leader_resign_observe(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    name = b"elect1"
    m0, m1, m2 = c.members
    exc = rpc_error(lambda: leader_value(c, m1, name))
    assert (exc.code(), exc.details()) == (grpc.StatusCode.UNKNOWN, "election: no leader")
    seen: list[bytes] = []
    stream = observe(c, m2, name, seen)
    l1, l2 = grant(c), grant(c)
    r1 = campaign(c, m0, name, l1, b"v1")
    assert r1.leader.key == name + b"/" + format(l1, "x").encode()
    assert r1.leader.rev == create_rev(c, r1.leader.key)
    assert (r1.leader.name, r1.leader.lease) == (name, l1)
    assert leader_value(c, m1, name) == b"v1"
    election_stub(c, m1).Proclaim(epb.ProclaimRequest(leader=r1.leader, value=b"v1b"),
                                  timeout=10)
    assert leader_value(c, m2, name) == b"v1b"

    second = pool.submit(campaign, c, m2, name, l2, b"v2")
    assert still_waiting(second)
    key2 = name + b"/" + format(l2, "x").encode()
    # The waiting candidate's key with the leader's token: not the leader.
    impostor = epb.LeaderKey(name=name, key=key2, rev=r1.leader.rev, lease=l2)
    for stub_call in (
            lambda: election_stub(c, m0).Proclaim(
                epb.ProclaimRequest(leader=impostor, value=b"x"), timeout=10),
            lambda: election_stub(c, m0).Proclaim(epb.ProclaimRequest(value=b"x"), timeout=10),
            lambda: election_stub(c, m0).Resign(epb.ResignRequest(), timeout=10)):
        exc = rpc_error(stub_call)
        assert exc.code() is grpc.StatusCode.UNKNOWN
    assert leader_value(c, m0, name) == b"v1b"  # the impostor changed nothing

    election_stub(c, m1).Resign(epb.ResignRequest(leader=r1.leader), timeout=10)
    r2 = second.result(timeout=15)
    assert r2.leader.rev > r1.leader.rev
    assert leader_value(c, m0, name) == b"v2"
    # Resigning a lost leadership is no error; proclaiming with it is.
    election_stub(c, m1).Resign(epb.ResignRequest(leader=r1.leader), timeout=10)
    exc = rpc_error(lambda: election_stub(c, m1).Proclaim(
        epb.ProclaimRequest(leader=r1.leader, value=b"late"), timeout=10))
    assert (exc.code(), exc.details()) == (grpc.StatusCode.UNKNOWN, "election: not leader")
    # Campaigning again with the same lease is idempotent and proclaims the new value.
    again = campaign(c, m1, name, l2, b"v2x")
    assert again.leader.rev == r2.leader.rev
    assert leader_value(c, m1, name) == b"v2x"
    wait_for(lambda: len(seen) >= 4, f"observe saw {seen}")
    stream.cancel()
    assert seen == [b"v1", b"v1b", b"v2", b"v2x"]
    for lease in (l1, l2):
        revoke(c, lease)


def test_election_messages_match_etcd(c: ProcCluster) -> None:
    stub = election_stub(c, c.members[0])
    cases = [
        (lambda: stub.Proclaim(epb.ProclaimRequest(value=b"x"), timeout=10),
         '"leader" field must be provided'),
        (lambda: stub.Resign(epb.ResignRequest(), timeout=10),
         '"leader" field must be provided'),
        (lambda: stub.Leader(epb.LeaderRequest(name=b"nobody"), timeout=10),
         "election: no leader"),
        (lambda: stub.Proclaim(epb.ProclaimRequest(
            leader=epb.LeaderKey(name=b"e", key=b"e/1", rev=5, lease=1)), timeout=10),
         "election: not leader"),
    ]
    for call, message in cases:
        exc = rpc_error(call)
        assert (exc.code(), exc.details()) == (grpc.StatusCode.UNKNOWN, message)


# --------------------------------------------------------------------------- real etcdctl


def etcdctl_bg(endpoint: str, *args: str) -> subprocess.Popen[str]:
    env = {"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.Popen(["etcdctl", f"--endpoints={endpoint}", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_of(proc: subprocess.Popen[str]) -> list[str]:
    """Collect ``proc``'s stdout lines as they come (in a thread)."""
    out: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return out


def interrupt(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_etcdctl_lock_processes_never_overlap_and_queue_behind_the_grpc_lock(
        c: ProcCluster, tmp_path: Path) -> None:
    """``etcdctl lock`` builds the mutex from KV + Lease + Watch; it shares the key scheme
    with ``v3lockpb.Lock``, so it must also wait for a lock held through the service."""
    lease = grant(c)
    held = lock(c, c.members[0], b"ctl-lock", lease)
    script = ('echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV $(date +%s.%N)" > "$OUT"; sleep 0.4; '
              'date +%s.%N >> "$OUT"')
    procs = []
    for i in range(3):
        out = tmp_path / f"holder{i}"
        p = etcdctl_bg(c.members[i].endpoint, "lock", "ctl-lock", "--",
                       "sh", "-c", script.replace("$OUT", str(out)))
        procs.append((p, out))
    try:
        time.sleep(2.0)
        assert not any(out.exists() for _, out in procs), "etcdctl ran while the lock was held"
        unlock(c, c.members[1], held.key)
        for p, _ in procs:
            assert p.wait(timeout=30) == 0, p.stderr.read() if p.stderr else ""
    finally:
        for p, _ in procs:
            interrupt(p)
        revoke(c, lease)
    spans = []
    for _, out in procs:
        first, second = out.read_text().splitlines()
        key, rev, start = first.split()
        assert key.startswith("ctl-lock/")
        spans.append((float(start), float(second), int(rev)))
    spans.sort()
    for (_, e1, r1), (s2, _, r2) in itertools.pairwise(spans):
        assert e1 <= s2, f"critical sections overlap: {spans}"
        assert r1 < r2, f"lock revisions do not grow with acquisition order: {spans}"


def test_etcdctl_elect_campaign_observe_and_leader_change(c: ProcCluster) -> None:
    observer = etcdctl_bg(c.members[2].endpoint, "elect", "-l", "ctl-elect")
    seen = lines_of(observer)
    first = etcdctl_bg(c.members[0].endpoint, "elect", "ctl-elect", "p1")
    out1 = lines_of(first)
    second = None
    try:
        wait_for(lambda: "p1" in out1, f"first candidate not elected: {out1}")
        assert out1[0].startswith("ctl-elect/")
        second = etcdctl_bg(c.members[1].endpoint, "elect", "ctl-elect", "p2")
        out2 = lines_of(second)
        time.sleep(1.5)
        assert out2 == [], "a second candidate was elected while the first leads"
        # The gRPC service sees the same election.
        assert leader_value(c, c.members[1], b"ctl-elect") == b"p1"
        interrupt(first)  # the leader's process exits (and resigns)
        wait_for(lambda: "p2" in out2, f"second candidate not elected: {out2}")
        assert leader_value(c, c.members[0], b"ctl-elect") == b"p2"
        wait_for(lambda: "p2" in seen, f"observer saw {seen}")
        assert [v for v in seen if not v.startswith("ctl-elect/")] == ["p1", "p2"]
    finally:
        for p in (first, second, observer):
            if p is not None:
                interrupt(p)


def retry(call: Callable[[], T], timeout: float = 30) -> T:
    """``call`` until it does not fail with UNAVAILABLE (no leader yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_waiters_and_observers_survive_the_raft_leaders_death(
        c: ProcCluster, pool: ThreadPoolExecutor) -> None:
    lead = c.leader()
    a, b = [m for m in c.members if m is not lead]
    l1, l2 = grant(c), grant(c)
    holder = lock(c, a, b"mutex7", l1)
    token1 = create_rev(c, holder.key)
    seen: list[bytes] = []
    stream = observe(c, b, b"elect7", seen)
    r = campaign(c, a, b"elect7", l1, b"before")
    waiter = pool.submit(lock, c, b, b"mutex7", l2, 60)
    wait_for(lambda: seen == [b"before"], f"observe saw {seen}")
    assert still_waiting(waiter)
    c.kill(lead)
    try:
        retry(lambda: unlock(c, a, holder.key))
        key2 = waiter.result(timeout=30).key
        assert create_rev(c, key2) > token1
        retry(lambda: election_stub(c, a).Proclaim(
            epb.ProclaimRequest(leader=r.leader, value=b"after"), timeout=10))
        wait_for(lambda: seen == [b"before", b"after"], f"observe saw {seen}")
        stream.cancel()
    finally:
        c.start(lead)
        c.wait_up(lead)
    for lease in (l1, l2):
        revoke(c, lease)
