"""Bad input and faults at the server: one clear line and a non-zero exit, never a
traceback; oversized or empty-key requests get etcd's status and message; SIGTERM stops a
member cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from tests.integration.procs import cluster, free_ports

pytestmark = pytest.mark.slow


def serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftkv", "serve", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def single_member(data_dir: Path, client: int, peer: int, *extra: str) -> list[str]:
    return ["--name", "a", "--data-dir", str(data_dir),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", *extra]


def assert_one_line_error(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("raftkv: error:")]
    assert len(errors) == 1, p.stderr
    for w in words:
        assert w in errors[0], errors[0]


def test_port_in_use(tmp_path: Path) -> None:
    client, peer = free_ports(2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", client))
        s.listen()
        p = serve(*single_member(tmp_path / "d", client, peer))
    assert_one_line_error(p, "--listen-client-urls", f"127.0.0.1:{client}", "in use")


def test_data_dir_of_another_cluster(tmp_path: Path) -> None:
    client, peer = free_ports(2)
    args = single_member(tmp_path / "d", client, peer)
    first = subprocess.Popen([sys.executable, "-m", "raftkv", "serve", *args,
                              "--initial-cluster-token", "one"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "d" / "CURRENT").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
    p = serve(*args, "--initial-cluster-token", "two")
    assert_one_line_error(p, str(tmp_path / "d"), "belongs to member", "another --data-dir")


def test_corrupt_and_unusable_data_dirs(tmp_path: Path) -> None:
    client, peer = free_ports(2)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "CURRENT").write_text("MANIFEST-000099\n")
    assert_one_line_error(serve(*single_member(corrupt, client, peer)), "corrupt")
    afile = tmp_path / "file"
    afile.write_text("not a directory")
    assert_one_line_error(serve(*single_member(afile, client, peer)), "not a directory")


def test_request_limits_and_empty_key(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        m = c.leader()
        ch = grpc.insecure_channel(m.endpoint,
                                   options=[("grpc.max_send_message_length", 64 << 20)])
        from raftkv.wire.pb.etcdserverpb import rpc_pb2_grpc

        kv = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
        kv.Put(rpc_pb2.PutRequest(key=b"ok", value=b"x" * 1_500_000))
        cases = [
            (rpc_pb2.PutRequest(key=b"big", value=b"x" * 1_600_000),
             grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large"),
            (rpc_pb2.PutRequest(key=b"huge", value=b"x" * 3_000_000),
             grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
            (rpc_pb2.PutRequest(key=b"", value=b"x"),
             grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided"),
        ]
        for req, code, text in cases:
            with pytest.raises(grpc.RpcError) as info:
                kv.Put(req)
            assert info.value.code() == code
            assert text in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            kv.Range(rpc_pb2.RangeRequest(key=b""))
        assert info.value.details() == "etcdserver: key is not provided"
        assert kv.Range(rpc_pb2.RangeRequest(key=b"ok")).count == 1  # nothing lost
        ch.close()


def test_sigterm_stops_a_member_cleanly(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        lead = c.leader()
        follower = next(m for m in c.members if m is not lead)
        c.kv(follower).Put(rpc_pb2.PutRequest(key=b"k", value=b"v"))
        assert follower.proc is not None
        follower.proc.send_signal(signal.SIGTERM)
        assert follower.proc.wait(timeout=20) == 0
        c.start(follower)  # LevelDB was closed properly: it reopens and has the data
        c.wait_up(follower)
        r = c.kv(follower).Range(rpc_pb2.RangeRequest(key=b"k", serializable=True))
        assert [kv.value for kv in r.kvs] == [b"v"]
