"""``raftkv cluster up|status|down`` with real member processes.

Skipped only while the server (``raftkv.server.app``) cannot be imported. The CLI runs in
subprocesses, as a user runs it, so the members outlive the ``up`` command; every test
ends with ``cluster down`` on its directory.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

pytest.importorskip("raftkv.server.app")

REPO = Path(__file__).resolve().parents[2]


def raftkv(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftkv", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def free_base_port(size: int) -> int:
    """A random run of free ports below Linux's ephemeral range (so parallel tests and
    the kernel's outgoing ports are unlikely to take them before the members do)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000, 2)
        if all(bindable(p) for p in range(base, base + 2 * size)):
            return base
    raise RuntimeError("no free ports")


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (read from /proc; nothing is signalled)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "rk"
    yield directory
    if (directory / "cluster.json").exists():
        raftkv("cluster", "down", "--data-dir", str(directory))


def put_get(endpoint: str, key: bytes, value: bytes | None) -> bytes | None:
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        if value is not None:
            stub.Put(rpc_pb2.PutRequest(key=key, value=value), timeout=10)
        kvs = stub.Range(rpc_pb2.RangeRequest(key=key), timeout=10).kvs
        return kvs[0].value if kvs else None


def test_up_status_down_and_restart(cluster_dir: Path) -> None:
    base = free_base_port(3)
    up = raftkv("cluster", "up", "--size", "3", "--data-dir", str(cluster_dir),
                "--base-port", str(base))
    assert up.returncode == 0, up.stderr
    endpoints = up.stdout.strip()
    assert endpoints == ",".join(f"http://127.0.0.1:{base + 2 * k}" for k in range(3))
    assert (cluster_dir / "cluster.json").exists()
    assert sorted(p.name for p in cluster_dir.glob("n*.pid")) == ["n1.pid", "n2.pid", "n3.pid"]

    status = raftkv("cluster", "status", "--data-dir", str(cluster_dir))
    assert status.returncode == 0, status.stdout
    lines = status.stdout.splitlines()
    assert len(lines) == 3
    assert all("alive" in line and "range ok" in line for line in lines), status.stdout

    for endpoint in endpoints.split(","):  # any member answers; followers forward
        assert put_get(endpoint, b"k-" + endpoint.encode(), b"v") == b"v"
    if shutil.which("etcdctl"):
        put = subprocess.run(["etcdctl", f"--endpoints={endpoints}", "put", "foo", "bar"],
                             capture_output=True, text=True, timeout=30,
                             env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
        assert put.stdout.strip() == "OK", put.stderr

    again = raftkv("cluster", "up", "--data-dir", str(cluster_dir))
    assert again.returncode == 1
    assert "already has a running cluster" in again.stderr

    pids = [int(p.read_text()) for p in sorted(cluster_dir.glob("n*.pid"))]
    down = raftkv("cluster", "down", "--data-dir", str(cluster_dir))
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == 3, down.stdout
    assert not list(cluster_dir.glob("n*.pid"))
    assert not [p for p in pids if p in processes_mentioning(str(cluster_dir))]
    status = raftkv("cluster", "status", "--data-dir", str(cluster_dir))
    assert status.returncode == 1
    assert status.stdout.count("dead") == 3

    # up on the same directory restarts the same members on their data
    restart = raftkv("cluster", "up", "--data-dir", str(cluster_dir))
    assert restart.returncode == 0, restart.stderr
    assert restart.stdout.strip() == endpoints
    assert put_get(endpoints.split(",")[2], b"k-" + endpoints.split(",")[0].encode(),
                   None) == b"v"


def test_up_failure_shows_logs_and_stops_what_it_started(cluster_dir: Path) -> None:
    cluster_dir.mkdir()
    (cluster_dir / "n2").write_text("not a directory\n")  # member n2 cannot open its data
    up = raftkv("cluster", "up", "--size", "3", "--data-dir", str(cluster_dir),
                "--base-port", str(free_base_port(3)), "--timeout", "20")
    assert up.returncode == 1
    assert f"--- {cluster_dir / 'n2.log'}" in up.stderr
    assert up.stderr.strip().splitlines()[-1].startswith("raftkv: error: ")
    assert "Traceback (most recent call last)" not in up.stderr.splitlines()[-1]
    assert not list(cluster_dir.glob("n*.pid"))
    assert processes_mentioning(str(cluster_dir)) == []
