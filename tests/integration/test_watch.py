"""``etcdserverpb.Watch`` against real member processes, with the real etcdctl 3.4 and raw
gRPC streams: output byte for byte as etcdctl prints it against etcd, history, compaction,
interactive mode, cancel, progress, watches on followers, a leader killed mid-stream, a
member without a leader, and a watch idle for more than a minute."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import grpc
import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import Member, ProcCluster, cluster, etcdctl

pytestmark = pytest.mark.slow


class EtcdctlWatch:
    """An ``etcdctl watch ...`` process whose stdout is collected by a thread."""

    def __init__(self, endpoint: str, *args: str, stdin: bool = False) -> None:
        env = {"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self.proc = subprocess.Popen(
            ["etcdctl", f"--endpoints={endpoint}", "watch", *args], env=env, text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(f, buf), daemon=True)
                         for f, buf in ((self.proc.stdout, self.out),
                                        (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(f: IO[str] | None, buf: list[str]) -> None:
        assert f is not None
        for line in f:
            buf.append(line)

    def text(self) -> str:
        return "".join(self.out)

    def wait_for(self, pred: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.text()):
                return self.text()
            time.sleep(0.05)
        raise AssertionError(f"watch output not as expected: {self.text()!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        for t in self._readers:
            t.join(timeout=5)


def ctl(c: ProcCluster, *args: str) -> str:
    r = etcdctl(c.endpoints, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def revision(c: ProcCluster, m: Member) -> int:
    resp = c.kv(m).Range(rpc_pb2.RangeRequest(key=b"\0"), timeout=10, wait_for_ready=True)
    return int(resp.header.revision)


def followers(c: ProcCluster) -> list[Member]:
    lead = c.leader()
    return [m for m in c.members if m is not lead and m.alive()]


@pytest.fixture(scope="module")
def c3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    with cluster(tmp_path_factory.mktemp("watch")) as c:
        c.leader()
        yield c


def warm_up(c: ProcCluster, w: EtcdctlWatch, key: str) -> None:
    """Write ``key`` until the watch (started without --rev) shows it: it is live."""
    for i in range(100):
        ctl(c, "put", key, f"warm{i}")
        try:
            w.wait_for(lambda t: f"{key}\nwarm" in t, timeout=0.3)
            return
        except AssertionError:
            continue
    raise AssertionError("watch never became live")


def test_watch_key_on_a_follower_sees_puts_and_deletes_made_through_the_leader(
        c3: ProcCluster) -> None:
    f = followers(c3)[0]
    lead = c3.leader()
    w = EtcdctlWatch(f.endpoint, "w1")
    try:
        warm_up(c3, w, "w1")
        mark = len(w.text())
        assert etcdctl(lead.endpoint, "put", "w1", "v1").stdout == "OK\n"
        etcdctl(lead.endpoint, "put", "w1x", "other")  # not watched
        etcdctl(lead.endpoint, "del", "w1")
        w.wait_for(lambda t: t.endswith("DELETE\nw1\n\n"))
        assert w.text()[mark:] == "PUT\nw1\nv1\nDELETE\nw1\n\n"
    finally:
        w.stop()


def test_watch_prefix_rev_and_prev_kv_replay_history_then_live(c3: ProcCluster) -> None:
    start = revision(c3, c3.members[0]) + 1
    ctl(c3, "put", "pfx/a", "1")
    ctl(c3, "put", "pfx/b", "1")
    ctl(c3, "put", "pfy", "not-in-prefix")
    ctl(c3, "put", "pfx/a", "2")
    ctl(c3, "del", "pfx/b")
    w = EtcdctlWatch(followers(c3)[-1].endpoint, "--prefix", "pfx/", f"--rev={start}",
                     "--prev-kv")
    try:
        history = ("PUT\npfx/a\n1\n" "PUT\npfx/b\n1\n" "PUT\npfx/a\n1\npfx/a\n2\n"
                   "DELETE\npfx/b\n1\npfx/b\n\n")
        w.wait_for(lambda t: t == history)
        ctl(c3, "put", "pfx/c", "live")
        w.wait_for(lambda t: t == history + "PUT\npfx/c\nlive\n")
    finally:
        w.stop()


def test_watch_on_a_compacted_revision_is_cancelled_like_etcd(c3: ProcCluster) -> None:
    ctl(c3, "put", "cmp", "1")
    ctl(c3, "put", "cmp", "2")
    rev = revision(c3, c3.members[0])
    assert ctl(c3, "compaction", str(rev)) == f"compacted revision {rev}\n"
    r = etcdctl(c3.endpoints, "watch", "cmp", f"--rev={rev - 1}", timeout=20)
    assert r.returncode == 5
    assert r.stdout == ""
    assert r.stderr == ("watch was canceled (etcdserver: mvcc: required revision has been "
                        "compacted)\nError: watch is canceled by the server\n")
    # at the compact revision itself, history is still there
    w = EtcdctlWatch(c3.members[0].endpoint, "cmp", f"--rev={rev}")
    try:
        w.wait_for(lambda t: t == "PUT\ncmp\n2\n")
    finally:
        w.stop()


def test_interactive_watch_creates_on_one_stream_and_progress(c3: ProcCluster) -> None:
    w = EtcdctlWatch(followers(c3)[0].endpoint, "-i", stdin=True)
    assert w.proc.stdin is not None
    try:
        w.proc.stdin.write("watch ia\nwatch ib --prev-kv\n")
        w.proc.stdin.flush()
        warm_up(c3, w, "ia")
        ctl(c3, "put", "ib", "1")
        ctl(c3, "put", "ib", "2")
        w.wait_for(lambda t: t.endswith("PUT\nib\n1\nPUT\nib\n1\nib\n2\n"))
        rev = revision(c3, c3.members[0])
        w.proc.stdin.write("progress\n")
        w.proc.stdin.flush()
        # the progress response (watch_id -1) is broadcast to both watchers of the stream
        w.wait_for(lambda t: t.endswith(f"progress notify: {rev}\nprogress notify: {rev}\n"))
    finally:
        w.proc.stdin.close()
        w.stop()


class RawWatch:
    """A raw gRPC Watch stream (for what etcdctl cannot send: cancel, client ids)."""

    def __init__(self, endpoint: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        # own subchannel: a shared one may still be backing off from before the member
        # was listening, and would fail the call at once
        self.channel = grpc.insecure_channel(endpoint,
                                             options=[("grpc.use_local_subchannel_pool", 1)])
        self.requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        stub = rpc_pb2_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.call = stub.Watch(iter(self.requests.get, None), metadata=metadata,
                              wait_for_ready=True)
        self.responses: queue.Queue[rpc_pb2.WatchResponse | grpc.RpcError] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for resp in self.call:
                self.responses.put(resp)
        except grpc.RpcError as exc:
            self.responses.put(exc)

    def send(self, **kw: object) -> None:
        self.requests.put(rpc_pb2.WatchRequest(**kw))  # type: ignore[arg-type]

    def next(self, timeout: float = 10.0) -> rpc_pb2.WatchResponse:
        item = self.responses.get(timeout=timeout)
        assert isinstance(item, rpc_pb2.WatchResponse), item
        return item

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


def test_raw_stream_ids_duplicate_id_cancel_and_half_close(c3: ProcCluster) -> None:
    m = followers(c3)[0]
    w = RawWatch(m.endpoint)
    try:
        create = rpc_pb2.WatchCreateRequest
        w.send(create_request=create(key=b"r1"))
        w.send(create_request=create(key=b"r2", watch_id=7))
        w.send(create_request=create(key=b"r3", watch_id=7))
        w.send(create_request=create(key=b"r4", range_end=b"r0"))
        got = [w.next() for _ in range(4)]
        assert [(r.watch_id, r.created, r.canceled, r.cancel_reason) for r in got] == [
            (0, True, False, ""), (7, True, False, ""),
            (-1, True, True, "mvcc: duplicate watch ID provided on the WatchStream"),
            (-1, True, True, "mvcc: watcher range is empty")]
        assert got[0].header.member_id != 0
        w.send(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=7))
        cancelled = w.next()
        assert (cancelled.watch_id, cancelled.canceled) == (7, True)
        w.requests.put(None)  # half-close: etcd keeps sending events
        ctl(c3, "put", "r2", "after-cancel")
        ctl(c3, "put", "r1", "x")
        ev = w.next()
        assert ev.watch_id == 0
        assert [(e.kv.key, e.kv.value) for e in ev.events] == [(b"r1", b"x")]
        assert ev.header.revision == ev.events[0].kv.mod_revision
    finally:
        w.close()


def test_events_are_neither_lost_nor_duplicated_across_a_leader_kill(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        lead = c.leader()
        survivor = next(m for m in c.members if m is not lead)
        start = revision(c, survivor) + 1
        acked: dict[int, bytes] = {}
        stop = threading.Event()

        def write(n: int) -> None:
            i = 0
            while not stop.is_set():
                for m in [x for x in c.members if x.alive()]:
                    key = b"lk/%d/%d" % (n, i)
                    try:
                        r = c.kv(m).Put(rpc_pb2.PutRequest(key=key, value=b"v"), timeout=3)
                    except grpc.RpcError:
                        continue
                    acked[r.header.revision] = key
                    i += 1
                    break

        writers = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(4)]
        for t in writers:
            t.start()
        try:
            deadline = time.monotonic() + 20
            while len(acked) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            # started behind: it replays history while the writes go on, then goes live
            w = EtcdctlWatch(survivor.endpoint, "--prefix", "lk/", f"--rev={start}",
                             "-w", "json")
            time.sleep(1.0)
            c.kill(lead)
            before = len(acked)
            deadline = time.monotonic() + 30
            while len(acked) < before + 30 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            for t in writers:
                t.join(timeout=10)
        try:
            assert len(acked) >= before + 30, "no writes after the leader was killed"
            last = max(acked)
            w.wait_for(lambda t: f'"mod_revision":{last},' in t, timeout=30)
        finally:
            w.stop()
        received = _json_event_revisions(w.text())
        assert received == sorted(set(received)), "events out of order or duplicated"
        assert set(acked) <= set(received), sorted(set(acked) - set(received))
        assert received[0] >= start


def _json_event_revisions(text: str) -> list[int]:
    import json
    revs: list[int] = []
    for line in text.splitlines():
        if line.startswith("{"):
            for ev in json.loads(line).get("Events") or []:
                revs.append(int(ev["kv"]["mod_revision"]))
    return revs


def test_a_member_without_a_leader_ends_hasleader_watches(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.leader()
        lone = c.members[0]
        strict = RawWatch(lone.endpoint, metadata=(("hasleader", "true"),))
        lax = RawWatch(lone.endpoint)
        try:
            for w in (strict, lax):
                w.send(create_request=rpc_pb2.WatchCreateRequest(key=b"nl"))
                assert w.next().created
            for m in c.members[1:]:
                c.kill(m)
            t0 = time.monotonic()
            err = strict.responses.get(timeout=30)
            assert isinstance(err, grpc.RpcError)
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            assert err.details() == "etcdserver: no leader"
            assert time.monotonic() - t0 >= 1.0  # ~3 election timeouts (0.5 s each)
            # without hasleader, the stream stays open (etcd does the same)
            with pytest.raises(queue.Empty):
                lax.responses.get(timeout=2)
        finally:
            strict.close()
            lax.close()


def test_an_etcdctl_watch_idle_for_over_a_minute_still_gets_events(c3: ProcCluster) -> None:
    # grpc-go pings an open stream every ~10 s; a server that answers GOAWAY too_many_pings
    # kills the watch and etcdctl would silently reconnect or exit.
    f = followers(c3)[0]
    # With --debug, etcdctl logs grpc-go's transport events (a GOAWAY included) to stderr.
    w = EtcdctlWatch(f.endpoint, "idle", "--debug")
    try:
        warm_up(c3, w, "idle")
        mark = len(w.text())
        time.sleep(65)
        assert w.proc.poll() is None, "".join(w.err)
        ctl(c3, "put", "idle", "after-65s")
        w.wait_for(lambda t: t[mark:] == "PUT\nidle\nafter-65s\n")
    finally:
        w.stop()
    log = "".join(w.err)
    assert "Adjusting keepalive ping interval" in log  # the debug log is on: it pings
    for sign in ("GoAway", "EnhanceYourCalm", "too_many_pings", "transport is closing"):
        assert sign not in log, log


def test_a_watch_on_a_member_that_catches_up_by_snapshot_misses_nothing(
        tmp_path: Path) -> None:
    """The member installs a snapshot while its watcher is live: the revisions the snapshot
    brings are replayed from history, not skipped (found by a chaos run)."""
    flags = ("--snapshot-count", "50", "--snapshot-catchup-entries", "10")
    with cluster(tmp_path, flags=flags) as c:
        lead = c.leader()
        f = next(m for m in c.members if m is not lead)
        assert f.proc is not None
        w = EtcdctlWatch(f.endpoint, "--prefix", "snap/")
        try:
            warm_up(c, w, "snap/warm")
            f.proc.send_signal(signal.SIGSTOP)  # behind: the leader compacts past it
            try:
                for i in range(300):
                    c.kv(lead).Put(rpc_pb2.PutRequest(key=b"snap/%03d" % i, value=b"x"),
                                   timeout=10)
            finally:
                f.proc.send_signal(signal.SIGCONT)
            for i in range(300, 600):  # writes go on while it installs the snapshot
                c.kv(lead).Put(rpc_pb2.PutRequest(key=b"snap/%03d" % i, value=b"x"),
                               timeout=10)
            keys = [f"snap/{i:03d}\nx\n" for i in range(600)]
            w.wait_for(lambda t: all(k in t for k in keys), timeout=60)
            assert "installed snapshot" in f.log_path.read_text()
        finally:
            w.stop()
