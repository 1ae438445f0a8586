"""Real raftkv member processes on loopback for integration tests.

Each member is ``python -m raftkv serve`` with its own LevelDB data directory and log file;
tests kill them with real signals. Everything started is stopped by PID at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def stop_processes(procs: list[subprocess.Popen[bytes]], grace_s: float = 15.0) -> None:
    """SIGTERM every process still running, wait up to ``grace_s`` each, then SIGKILL."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Member:
    def __init__(self, name: str, client_port: int, peer_port: int, data_dir: Path) -> None:
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{name}.log"
        self.member_id = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ProcCluster:
    """A cluster of real member processes (see the module docstring)."""

    def __init__(self, root: Path, size: int = 3, *, flags: tuple[str, ...] = (),
                 tls_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.env = env
        """The members' environment (None: this process's)."""
        ports = free_ports(2 * size)
        self.members = [Member(f"n{i + 1}", ports[2 * i], ports[2 * i + 1], root / f"n{i + 1}")
                        for i in range(size)]
        self.tls_dir = tls_dir
        """With it, members serve mutual TLS on both listeners with the certificates of
        ``raftkv.certs.init_cluster`` there (``ca.pem``, ``nK.pem``, ``client.pem``)."""
        self.scheme = "https" if tls_dir is not None else "http"
        if tls_dir is not None and not (tls_dir / "ca.pem").exists():
            from raftkv.certs import init_cluster

            init_cluster(tls_dir, [m.name for m in self.members])
        self.initial_cluster = ",".join(f"{m.name}={self.scheme}://127.0.0.1:{m.peer_port}"
                                        for m in self.members)
        self.flags = flags
        self.channels: dict[str, grpc.Channel] = {}

    def tls_flags(self, m: Member) -> list[str]:
        d = self.tls_dir
        if d is None:
            return []
        cert, key, ca = str(d / f"{m.name}.pem"), str(d / f"{m.name}-key.pem"), str(d / "ca.pem")
        return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
                "--client-cert-auth", "--peer-cert-file", cert, "--peer-key-file", key,
                "--peer-trusted-ca-file", ca, "--peer-client-cert-auth"]

    def etcdctl_tls(self) -> list[str]:
        """etcdctl's flags to reach this cluster (none without TLS)."""
        d = self.tls_dir
        if d is None:
            return []
        return [f"--cacert={d / 'ca.pem'}", f"--cert={d / 'client.pem'}",
                f"--key={d / 'client-key.pem'}"]

    @property
    def endpoints(self) -> str:
        if self.tls_dir is not None:
            return ",".join(f"https://{m.endpoint}" for m in self.members)
        return ",".join(m.endpoint for m in self.members)

    def start(self, m: Member) -> None:
        sch = self.scheme
        args = [sys.executable, "-m", "raftkv", "serve", "--name", m.name,
                "--data-dir", str(m.data_dir),
                "--listen-client-urls", f"{sch}://{m.endpoint}",
                "--advertise-client-urls", f"{sch}://{m.endpoint}",
                "--listen-peer-urls", f"{sch}://127.0.0.1:{m.peer_port}",
                "--initial-advertise-peer-urls", f"{sch}://127.0.0.1:{m.peer_port}",
                "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                *self.tls_flags(m), *self.flags]
        log = open(m.log_path, "ab")  # noqa: SIM115 - handed to the child
        m.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()

    def start_all(self) -> None:
        for m in self.members:
            self.start(m)

    def kill(self, m: Member, sig: int = signal.SIGKILL) -> None:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(sig)
            m.proc.wait(timeout=30)

    def stop_all(self) -> None:
        for m in self.members:
            if m.alive():
                assert m.proc is not None
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
        for ch in self.channels.values():
            ch.close()

    def kv(self, m: Member) -> rpc_pb2_grpc.KVStub:
        return rpc_pb2_grpc.KVStub(self._channel(m))  # type: ignore[no-untyped-call]

    def maint(self, m: Member) -> rpc_pb2_grpc.MaintenanceStub:
        return rpc_pb2_grpc.MaintenanceStub(self._channel(m))  # type: ignore[no-untyped-call]

    def _channel(self, m: Member) -> grpc.Channel:
        if m.name not in self.channels:
            d = self.tls_dir
            if d is None:
                self.channels[m.name] = grpc.insecure_channel(m.endpoint)
            else:
                creds = grpc.ssl_channel_credentials(
                    (d / "ca.pem").read_bytes(), (d / "client-key.pem").read_bytes(),
                    (d / "client.pem").read_bytes())
                self.channels[m.name] = grpc.secure_channel(m.endpoint, creds)
        return self.channels[m.name]

    def status(self, m: Member, timeout: float = 1.0) -> rpc_pb2.StatusResponse | None:
        if not m.alive():
            return None
        try:
            st: rpc_pb2.StatusResponse = self.maint(m).Status(rpc_pb2.StatusRequest(),
                                                              timeout=timeout)
            return st
        except grpc.RpcError:
            return None

    def leader(self, timeout: float = 30.0) -> Member:
        """Wait until every live member answers and they agree on a leader; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            by_id = {}
            leaders = set()
            silent = 0
            for m in self.members:
                st = self.status(m)
                if st is not None:
                    m.member_id = st.header.member_id
                    by_id[m.member_id] = m
                    leaders.add(st.leader)
                elif m.alive():
                    silent += 1  # still starting: its channel may be backing off
            if len(leaders) == 1 and silent == 0:
                lead = leaders.pop()
                if lead in by_id:
                    return by_id[lead]
            time.sleep(0.05)
        logs = self.members[0].log_path.parent
        raise AssertionError(f"no leader within {timeout}s; logs in {logs}")

    def wait_up(self, m: Member, timeout: float = 30.0) -> None:
        """Wait until ``m`` answers Status (it has started and opened its data)."""
        deadline = time.monotonic() + timeout
        while self.status(m) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{m.name} did not come up within {timeout}s")
            time.sleep(0.05)

    def wait_applied(self, m: Member, index: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status(m)
            if st is not None and st.raftAppliedIndex >= index:
                return
            time.sleep(0.1)
        raise AssertionError(f"{m.name} did not apply index {index} within {timeout}s")


@contextmanager
def cluster(root: Path, size: int = 3, *, flags: tuple[str, ...] = (),
            tls_dir: Path | None = None) -> Iterator[ProcCluster]:
    c = ProcCluster(root, size, flags=flags, tls_dir=tls_dir)
    c.start_all()
    try:
        yield c
    finally:
        c.stop_all()


def etcdctl(endpoints: str, *args: str, stdin: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["etcdctl", f"--endpoints={endpoints}", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
