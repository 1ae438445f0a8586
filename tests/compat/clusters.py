"""The two clusters the differential test compares: a real 3-member etcd (Debian's ``etcd``
binary) and a 3-member raftkv cluster (real ``python -m raftkv serve`` processes), both on
free loopback ports, with the same member names (n1, n2, n3) and the same raft timings.

Both are driven only through the real ``etcdctl``; a :class:`Target` is what a case sees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.procs import ProcCluster, free_ports, stop_processes

HEARTBEAT_MS = "50"
ELECTION_MS = "500"
ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def etcdctl_available() -> bool:
    return shutil.which("etcdctl") is not None


def etcd_available() -> bool:
    return shutil.which("etcd") is not None


def run_etcdctl(endpoints: str, args: tuple[str, ...] | list[str], *, stdin: str | None = None,
                timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    env = {"ETCDCTL_API": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        return subprocess.run(["etcdctl", f"--endpoints={endpoints}", *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return subprocess.CompletedProcess(exc.cmd, -9, out, err + f"\n[timeout {timeout}s]")


@dataclass
class Node:
    """One member as the test sees it: its name, client endpoint and peer URL."""

    name: str
    endpoint: str
    peer_url: str
    member_id: int = 0


@dataclass
class Target:
    """One side of the comparison (``etcd`` or ``raftkv``)."""

    label: str
    nodes: list[Node]
    root: Path
    # extra free ports this target may use for ``member add`` (unstarted members only)
    spare_peer_urls: list[str] = field(default_factory=list)

    @property
    def endpoints(self) -> str:
        return ",".join(n.endpoint for n in self.nodes)

    def etcdctl(self, args: tuple[str, ...] | list[str], *, stdin: str | None = None,
                endpoints: str | None = None,
                timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return run_etcdctl(endpoints or self.endpoints, args, stdin=stdin, timeout=timeout)

    def status(self) -> dict[str, dict[str, int]]:
        """``endpoint status -w json`` per endpoint: {endpoint: {member_id, leader, ...}}."""
        p = self.etcdctl(["endpoint", "status", "-w", "json"], timeout=10)
        out: dict[str, dict[str, int]] = {}
        if p.returncode != 0 or not p.stdout.strip():
            return out
        for row in json.loads(p.stdout):
            st = row["Status"]
            out[row["Endpoint"]] = {"member_id": int(st["header"]["member_id"]),
                                    "leader": int(st.get("leader", 0)),
                                    "cluster_id": int(st["header"]["cluster_id"]),
                                    "revision": int(st["header"].get("revision", 0))}
        return out

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every member answers Status, they agree on one leader, and a
        linearizable read through every endpoint succeeds."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            st = self.status()
            leaders = {s["leader"] for s in st.values()}
            if len(st) == len(self.nodes) and len(leaders) == 1 and 0 not in leaders:
                for n in self.nodes:
                    n.member_id = st[n.endpoint]["member_id"]
                # every member has published its name and client URLs (etcd serves clients
                # only after that; raftkv may answer before: the cases compare steady state)
                ml = self.etcdctl(["member", "list"], timeout=5).stdout.splitlines()
                published = len(ml) == len(self.nodes) and all(
                    ", started, " in line and not line.endswith(", , false") for line in ml)
                if published and all(self.etcdctl(["get", "compat-ready"], endpoints=n.endpoint,
                                                  timeout=5).returncode == 0
                                     for n in self.nodes):
                    return
            last = repr(st)
            time.sleep(0.1)
        raise AssertionError(f"{self.label} not ready within {timeout}s: {last}; "
                             f"logs in {self.root}")

    def leader(self) -> Node:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = self.status()
            leaders = {s["leader"] for s in st.values()}
            if len(leaders) == 1:
                lead = leaders.pop()
                for n in self.nodes:
                    if n.member_id == lead:
                        return n
            time.sleep(0.1)
        raise AssertionError(f"{self.label}: no agreed leader")


class EtcdCluster:
    """A real 3-member etcd cluster (``--initial-cluster-state new``), data under ``root``,
    every member stopped by PID at the end."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        ports = free_ports(2 * size + 2)
        self.nodes = [Node(f"n{i + 1}", f"127.0.0.1:{ports[2 * i]}",
                           f"http://127.0.0.1:{ports[2 * i + 1]}") for i in range(size)]
        self.spare = [f"http://127.0.0.1:{p}" for p in ports[2 * size:]]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Target:
        initial = ",".join(f"{n.name}={n.peer_url}" for n in self.nodes)
        for n in self.nodes:
            args = [ETCD_BIN, "--name", n.name, "--data-dir", str(self.root / n.name),
                    "--listen-client-urls", f"http://{n.endpoint}",
                    "--advertise-client-urls", f"http://{n.endpoint}",
                    "--listen-peer-urls", n.peer_url,
                    "--initial-advertise-peer-urls", n.peer_url,
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "compat-etcd",
                    "--heartbeat-interval", HEARTBEAT_MS, "--election-timeout", ELECTION_MS,
                    "--logger", "zap", "--log-outputs", "stderr"]
            with open(self.root / f"{n.name}.log", "ab") as log:
                self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        return Target("etcd", self.nodes, self.root, list(self.spare))

    def stop(self) -> None:
        stop_processes(self.procs)


class RaftkvCluster:
    """A 3-member raftkv cluster of real processes (tests/integration/procs.py)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.procs = ProcCluster(root, size)
        self.spare = [f"http://127.0.0.1:{p}" for p in free_ports(2)]

    def start(self) -> Target:
        self.procs.start_all()
        nodes = [Node(m.name, m.endpoint, f"http://127.0.0.1:{m.peer_port}")
                 for m in self.procs.members]
        return Target("raftkv", nodes, self.root, list(self.spare))

    def stop(self) -> None:
        self.procs.stop_all()
