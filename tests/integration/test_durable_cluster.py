"""A durable 3-member cluster of real processes, real gRPC, real LevelDB and the real etcdctl:
writes survive kill -9 of the leader and of every member, and a member that missed more
than a compacted log's worth of writes catches up by snapshot."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from tests.integration.procs import Member, ProcCluster, cluster, etcdctl

pytestmark = pytest.mark.slow


class Writer:
    """Writers that put keys through any live member and remember what was acknowledged."""

    def __init__(self, c: ProcCluster, prefix: str, threads: int = 4) -> None:
        self.c = c
        self.prefix = prefix
        self.acked: set[bytes] = set()
        self.last_ack = time.monotonic()
        self.gaps: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> Writer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, n: int) -> None:
        i = attempt = 0
        while not self._stop.is_set():
            key = f"{self.prefix}/{n}/{i}".encode()
            live = [m for m in self.c.members if m.alive()]
            if not live:
                time.sleep(0.05)
                continue
            m = live[(n + attempt) % len(live)]
            attempt += 1
            try:
                self.c.kv(m).Put(rpc_pb2.PutRequest(key=key, value=b"v" * 64), timeout=2)
            except grpc.RpcError as exc:
                self.errors.append(f"{m.name}: {exc.code()} {exc.details()}")
                time.sleep(0.02)
                continue  # outcome unknown: not counted as acknowledged
            now = time.monotonic()
            with self._lock:
                self.gaps.append(now - self.last_ack)
                self.last_ack = now
                self.acked.add(key)
            i += 1


def keys_on(c: ProcCluster, m: Member, prefix: str, serializable: bool = False) -> set[bytes]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    r = c.kv(m).Range(rpc_pb2.RangeRequest(key=prefix.encode(), range_end=end.encode(),
                                           keys_only=True, serializable=serializable),
                      timeout=30)
    return {kv.key for kv in r.kvs}


def until(pred: Callable[[], bool], timeout: float, what: str, w: Writer | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    detail = f"; {len(w.acked)} acked, last errors {w.errors[-5:]}" if w is not None else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="etcdctl is installed by .ci/run")
def test_etcdctl_against_every_member(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.leader()
        for i, m in enumerate(c.members):
            assert etcdctl(m.endpoint, "put", f"k{i}", f"v{i}").stdout.strip() == "OK"
        for m in c.members:
            out = etcdctl(m.endpoint, "get", "k", "--prefix").stdout.split()
            assert out == ["k0", "v0", "k1", "v1", "k2", "v2"]
        assert etcdctl(c.members[2].endpoint, "del", "k1").stdout.strip() == "1"
        assert etcdctl(c.endpoints, "get", "k1").stdout == ""
        bad = etcdctl(c.endpoints, "put", "", "x")
        assert bad.returncode != 0
        assert "etcdserver: key is not provided" in bad.stderr


def test_kill_leader_during_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with cluster(tmp_path) as c:
        old = c.leader()
        with Writer(c, "/w") as w:
            until(lambda: len(w.acked) > 50, 20, "writes before the kill", w)
            killed_at = time.monotonic()
            c.kill(old)
            until(lambda: w.last_ack > killed_at + 0.05 and len(w.acked) > 0, 30,
                  "a write acknowledged after the leader was killed")
            failover = w.last_ack - killed_at
            n_before = len(w.acked)
            until(lambda: len(w.acked) > n_before + 50, 20, "writes after failover", w)
        new = c.leader()
        assert new is not old
        with capsys.disabled():
            print(f"\n  leader failover: first write acknowledged {failover * 1000:.0f} ms "
                  f"after kill -9 of the leader ({len(w.acked)} writes acknowledged)")
        assert w.acked <= keys_on(c, new, "/w")
        c.start(old)  # the old leader rejoins and catches up
        idx = c.status(new).raftIndex  # type: ignore[union-attr]
        c.wait_applied(old, idx)
        assert w.acked <= keys_on(c, old, "/w", serializable=True)


def test_kill_every_member_during_writes(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.leader()
        with Writer(c, "/all") as w:
            until(lambda: len(w.acked) > 100, 20, "writes before the kill", w)
            for m in c.members:
                c.kill(m)
        acked = set(w.acked)
        c.start_all()
        lead = c.leader()
        found = keys_on(c, lead, "/all")
        assert acked <= found, f"{len(acked - found)} acknowledged writes lost"
        # nothing half-applied: every key present has its full value
        r = c.kv(lead).Range(rpc_pb2.RangeRequest(key=b"/all", range_end=b"/alm"))
        assert all(kv.value == b"v" * 64 and kv.version == 1 for kv in r.kvs)


def test_lagging_member_catches_up_by_snapshot(tmp_path: Path) -> None:
    flags = ("--snapshot-count", "2000", "--snapshot-catchup-entries", "200")
    with cluster(tmp_path, flags=flags) as c:
        lead = c.leader()
        lagger = next(m for m in c.members if m is not lead)
        c.kill(lagger)
        with Writer(c, "/lag", threads=8) as w:
            until(lambda: len(w.acked) >= 10_000, 180, "10,000 writes", w)
        c.start(lagger)
        idx = c.status(c.leader()).raftIndex  # type: ignore[union-attr]
        c.wait_applied(lagger, idx, timeout=120)
        assert w.acked <= keys_on(c, lagger, "/lag", serializable=True)
        assert "installed snapshot" in lagger.log_path.read_text()
