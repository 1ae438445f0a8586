"""``etcdserverpb.Cluster`` with real member processes and the real etcdctl: member list with
published names and client URLs, add a learner, start it with ``--initial-cluster-state
existing``, it catches up, promote, update, remove (the removed member stops), and etcd's
errors for unknown members, duplicate peer URLs and learners that are not in sync."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tests.integration.procs import Member, ProcCluster, cluster, etcdctl, free_ports

pytestmark = pytest.mark.slow


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def member_rows(endpoints: str) -> dict[str, list[str]]:
    """``etcdctl member list`` as ``{name or id: [id, status, name, peers, clients, learner]}``."""
    r = etcdctl(endpoints, "member", "list")
    assert r.returncode == 0, r.stderr
    rows = [line.split(", ") for line in r.stdout.strip().splitlines()]
    return {row[2] or row[0]: row for row in rows}


def all_started(c: ProcCluster, names: list[str]) -> bool:
    rows = member_rows(c.endpoints)
    return all(n in rows and rows[n][1] == "started" and rows[n][4] for n in names)


def start_joining(c: ProcCluster, m: Member, initial_cluster: str) -> None:
    """Start ``m`` as etcd's docs start a member added with ``member add``."""
    args = [sys.executable, "-m", "raftkv", "serve", "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--listen-client-urls", f"http://{m.endpoint}",
            "--advertise-client-urls", f"http://{m.endpoint}",
            "--listen-peer-urls", f"http://127.0.0.1:{m.peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{m.peer_port}",
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "existing",
            "--heartbeat-interval", "50", "--election-timeout", "500"]
    log = open(m.log_path, "ab")  # noqa: SIM115 - handed to the child
    m.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    c.members.append(m)


def test_member_list_add_learner_promote_update_remove(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.leader()
        eventually(lambda: all_started(c, ["n1", "n2", "n3"]), "members publish")
        rows = member_rows(c.endpoints)
        for m in c.members:
            assert rows[m.name][3] == f"http://127.0.0.1:{m.peer_port}"
            assert rows[m.name][4] == f"http://{m.endpoint}"
            assert rows[m.name][5] == "false"
        _errors(c, rows)
        _learner_not_in_sync(c)
        n4 = _add_and_start_learner(c, tmp_path)
        _promote(c, n4)
        _update_and_remove(c, n4)


def _errors(c: ProcCluster, rows: dict[str, list[str]]) -> None:
    r = etcdctl(c.endpoints, "member", "remove", "abcdef")
    assert r.returncode != 0
    assert "etcdserver: member not found" in r.stderr
    r = etcdctl(c.endpoints, "member", "add", "dup",
                f"--peer-urls=http://127.0.0.1:{c.members[0].peer_port}")
    assert "etcdserver: Peer URLs already exists" in r.stderr, r.stderr
    r = etcdctl(c.endpoints, "member", "update", rows["n2"][0],
                f"--peer-urls=http://127.0.0.1:{c.members[2].peer_port}")
    assert "etcdserver: Peer URLs already exists" in r.stderr, r.stderr
    r = etcdctl(c.endpoints, "member", "promote", rows["n2"][0])
    assert "etcdserver: can only promote a learner member" in r.stderr, r.stderr
    # unixs:// passes etcdctl's own check (etcd takes unix sockets); raftkv serves only
    # http:// and https://, so the URL is invalid
    r = etcdctl(c.endpoints, "member", "add", "bad", "--peer-urls=unixs://127.0.0.1:1")
    assert "etcdserver: given member URLs are invalid" in r.stderr, r.stderr


def _learner_not_in_sync(c: ProcCluster) -> None:
    """A learner that never started has matched nothing: promotion is refused."""
    (port,) = free_ports(1)
    r = etcdctl(c.endpoints, "member", "add", "ghost", "--learner",
                f"--peer-urls=http://127.0.0.1:{port}")
    assert r.returncode == 0, r.stderr
    ghost = re.search(r"Member\s+([0-9a-f]+) added", r.stdout)
    assert ghost is not None, r.stdout
    rows = member_rows(c.endpoints)
    assert rows[ghost.group(1)][1] == "unstarted"
    assert rows[ghost.group(1)][5] == "true"
    r = etcdctl(c.endpoints, "member", "add", "second", "--learner",
                f"--peer-urls=http://127.0.0.1:{port + 1}")
    assert "etcdserver: too many learner members in cluster" in r.stderr, r.stderr
    lead = c.leader()
    follower = next(m for m in c.members if m is not lead)
    for ep in (lead.endpoint, follower.endpoint):  # on the leader; forwarded by a follower
        r = etcdctl(ep, "member", "promote", ghost.group(1))
        assert r.returncode != 0
        assert ("etcdserver: can only promote a learner member which is in sync with leader"
                in r.stderr), r.stderr
    r = etcdctl(c.endpoints, "member", "remove", ghost.group(1))
    assert r.returncode == 0, r.stderr
    assert ghost.group(1) not in member_rows(c.endpoints)


def _add_and_start_learner(c: ProcCluster, root: Path) -> Member:
    for i in range(50):
        assert etcdctl(c.endpoints, "put", f"before/{i}", f"v{i}").returncode == 0
    client_port, peer_port = free_ports(2)
    n4 = Member("n4", client_port, peer_port, root / "n4")
    r = etcdctl(c.endpoints, "member", "add", "n4", "--learner",
                f"--peer-urls=http://127.0.0.1:{peer_port}")
    assert r.returncode == 0, r.stderr
    added = re.search(r"Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)", r.stdout)
    initial = re.search(r'ETCD_INITIAL_CLUSTER="([^"]+)"', r.stdout)
    assert added is not None, r.stdout
    assert initial is not None, r.stdout
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in r.stdout
    assert f"n4=http://127.0.0.1:{peer_port}" in initial.group(1)
    rows = member_rows(c.endpoints)
    assert rows[added.group(1)][1:] == ["unstarted", "", f"http://127.0.0.1:{peer_port}",
                                        "", "true"]
    start_joining(c, n4, initial.group(1))
    c.wait_up(n4)

    def caught_up() -> bool:
        got = etcdctl(n4.endpoint, "get", "before/49", "--consistency=s",
                      "--print-value-only")
        return got.stdout.strip() == "v49"
    eventually(caught_up, "n4 catches up as a learner")
    st = c.status(n4)
    assert st is not None
    assert st.isLearner
    assert st.header.member_id == int(added.group(1), 16)
    # a joining member adopts the running cluster's id (as etcd fetches it from peers)
    lead_status = c.status(c.leader())
    assert lead_status is not None
    assert st.header.cluster_id == lead_status.header.cluster_id
    eventually(lambda: all_started(c, ["n4"]), "n4 publishes its client URLs")

    def n4_knows_everyone() -> bool:
        rows = member_rows(n4.endpoint)
        return len(rows) == 4 and all(row[1] == "started" and row[4] for row in rows.values())
    eventually(n4_knows_everyone, "n4 (joined from a snapshot) lists every member's URLs")
    return n4


def _promote(c: ProcCluster, n4: Member) -> None:
    n4_id = member_rows(c.endpoints)["n4"][0]

    def promoted() -> bool:
        r = etcdctl(c.endpoints, "member", "promote", n4_id)
        return r.returncode == 0 and "promoted" in r.stdout
    eventually(promoted, "n4 is promoted once in sync")
    assert member_rows(c.endpoints)["n4"][5] == "false"
    r = etcdctl(",".join(m.endpoint for m in c.members), "endpoint", "status", "--cluster")
    assert r.returncode == 0, r.stderr
    assert f"http://{n4.endpoint}" in r.stdout


def _update_and_remove(c: ProcCluster, n4: Member) -> None:
    rows = member_rows(c.endpoints)
    same = f"http://127.0.0.1:{n4.peer_port}"
    r = etcdctl(c.endpoints, "member", "update", rows["n4"][0], f"--peer-urls={same}")
    assert r.returncode == 0, r.stderr
    assert "updated in cluster" in r.stdout
    n1 = c.members[0]
    r = etcdctl(c.endpoints, "member", "remove", rows["n1"][0])
    assert r.returncode == 0, r.stderr
    assert proc_exits(n1), "a removed member stops"
    rest = ",".join(m.endpoint for m in c.members[1:])
    assert "n1" not in member_rows(rest)
    assert len(member_rows(rest)) == 3
    r = etcdctl(rest, "put", "after", "removal")
    assert r.returncode == 0, r.stderr
    for m in c.members[1:]:
        got = etcdctl(m.endpoint, "get", "after", "--print-value-only")
        assert got.stdout.strip() == "removal", (m.name, got.stderr)


def proc_exits(m: Member, timeout: float = 30.0) -> bool:
    assert m.proc is not None
    try:
        m.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_restart_with_a_changed_initial_cluster_keeps_the_data_dirs_cluster(
        tmp_path: Path) -> None:
    """A member restarted with today's --initial-cluster (after membership changed) and
    --initial-cluster-state new rejoins its cluster: the bootstrap flags only matter for an
    empty data dir, as in etcd (found by the chaos harness: it used to recompute the
    cluster id from the flag and refuse its own data dir)."""
    with cluster(tmp_path) as c:
        c.leader()
        etcdctl(c.endpoints, "put", "before", "restart")
        m = c.members[2]
        c.kill(m)
        spare = free_ports(1)[0]
        c.initial_cluster += f",n9=http://127.0.0.1:{spare}"  # what a later add would give
        c.start(m)
        c.wait_up(m)
        eventually(lambda: etcdctl(m.endpoint, "get", "before", "--print-value-only")
                   .stdout == "restart\n", "the restarted member serves its data")
        assert "belongs to member" not in m.log_path.read_text()


def test_back_to_back_membership_changes_wait_for_the_pending_one(tmp_path: Path) -> None:
    """After an add the leader shares the member registry as a conf-change entry (and
    starting members publish their attributes as one); an operator's next change made at
    once must wait for it, not fail with 'a membership change is already pending'."""
    from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    with cluster(tmp_path) as c:
        lead = c.leader()
        with grpc.insecure_channel(lead.endpoint) as ch:
            stub = rpc_pb2_grpc.ClusterStub(ch)  # type: ignore[no-untyped-call]
            for _ in range(3):
                url = f"http://127.0.0.1:{free_ports(1)[0]}"
                added = stub.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=[url],
                                                                isLearner=True), timeout=30)
                stub.MemberRemove(rpc_pb2.MemberRemoveRequest(ID=added.member.ID),
                                  timeout=30)
