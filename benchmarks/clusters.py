"""Local clusters for the benchmarks: a real 3-member etcd (Debian's ``etcd``) and a
3-member raftkv, both real processes on loopback with fresh data directories, both with
etcd's default timing (heartbeat 100 ms, election timeout 1000 ms). Every process started
is stopped by its PID.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import ProcCluster, free_ports, stop_processes

HEARTBEAT_MS = "100"
ELECTION_MS = "1000"
ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def _channel(ep: str, tls_dir: Path | None) -> grpc.Channel:
    if tls_dir is None:
        return grpc.insecure_channel(ep)
    creds = grpc.ssl_channel_credentials((tls_dir / "ca.pem").read_bytes(),
                                         (tls_dir / "client-key.pem").read_bytes(),
                                         (tls_dir / "client.pem").read_bytes())
    return grpc.secure_channel(ep, creds)


def wait_serving(endpoints: list[str], timeout: float = 60.0,
                 tls_dir: Path | None = None) -> None:
    """Until every endpoint answers a linearizable Range (a leader exists and it is in)."""
    deadline = time.monotonic() + timeout
    for ep in endpoints:
        with _channel(ep, tls_dir) as ch:
            kv = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
            while True:
                try:
                    kv.Range(rpc_pb2.RangeRequest(key=b"probe"), timeout=2)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{ep} did not serve within {timeout:g}s") from None
                    time.sleep(0.1)


def tls_flags(tls_dir: Path, member: str) -> list[str]:
    """Mutual TLS on both listeners with ``raftkv certs init``'s files: etcd's flags, which
    raftkv takes too."""
    cert, key = str(tls_dir / f"{member}.pem"), str(tls_dir / f"{member}-key.pem")
    ca = str(tls_dir / "ca.pem")
    return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
            "--client-cert-auth", "--peer-cert-file", cert, "--peer-key-file", key,
            "--peer-trusted-ca-file", ca, "--peer-client-cert-auth"]


class Etcd:
    """A 3-member etcd 3.4 cluster (fsync on, as by default); with ``tls_dir``, mutual TLS
    on both listeners with the certificates there (member ``eK`` uses ``nK.pem``)."""

    name = "etcd"

    def __init__(self, root: Path, size: int = 3, tls_dir: Path | None = None,
                 name: str = "") -> None:
        self.tls_dir = tls_dir
        self.name = name or ("etcd" if tls_dir is None else "etcd-tls")
        self.root = root / self.name
        self.root.mkdir(parents=True)
        ports = free_ports(2 * size)
        scheme = "https" if tls_dir is not None else "http"
        self.endpoints = [f"127.0.0.1:{ports[2 * i]}" for i in range(size)]
        self.peers = [f"{scheme}://127.0.0.1:{ports[2 * i + 1]}" for i in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        initial = ",".join(f"e{i + 1}={p}" for i, p in enumerate(self.peers))
        scheme = "https" if self.tls_dir is not None else "http"
        for i, (ep, peer) in enumerate(zip(self.endpoints, self.peers, strict=True)):
            name = f"e{i + 1}"
            tls = tls_flags(self.tls_dir, f"n{i + 1}") if self.tls_dir is not None else []
            args = [ETCD_BIN, "--name", name, "--data-dir", str(self.root / name),
                    "--listen-client-urls", f"{scheme}://{ep}", "--advertise-client-urls",
                    f"{scheme}://{ep}", *tls, "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer, "--initial-cluster", initial,
                    "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
                    "--heartbeat-interval", HEARTBEAT_MS, "--election-timeout", ELECTION_MS,
                    "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"]
            with open(self.root / f"{name}.log", "ab") as log:
                self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_serving(self.endpoints, tls_dir=self.tls_dir)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        stop_processes(self.procs)


class Raftkv:
    """A 3-member raftkv cluster (tests/integration/procs.py), etcd's timing; with
    ``tls_dir``, mutual TLS on both listeners with the certificates there."""

    name = "raftkv"

    def __init__(self, root: Path, size: int = 3, flags: tuple[str, ...] = (),
                 tls_dir: Path | None = None, name: str = "",
                 env: dict[str, str] | None = None) -> None:
        self.tls_dir = tls_dir
        self.name = name or ("raftkv" if tls_dir is None else "raftkv-tls")
        self.cluster = ProcCluster(root / self.name, size, flags=(
            "--heartbeat-interval", HEARTBEAT_MS, "--election-timeout", ELECTION_MS, *flags),
            tls_dir=tls_dir, env=env)
        self.endpoints = [m.endpoint for m in self.cluster.members]

    def start(self) -> None:
        self.cluster.start_all()
        self.cluster.leader(timeout=60)
        wait_serving(self.endpoints, tls_dir=self.tls_dir)

    @property
    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.cluster.members if m.proc is not None]

    def stop(self) -> None:
        self.cluster.stop_all()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
