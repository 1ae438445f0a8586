"""``raftkv cluster up|status|down``: a local N-member cluster on 127.0.0.1.

Everything lives under one directory::

    DIR/cluster.json        members, URLs, token, endpoints and ``tls`` (written by ``up``)
    DIR/nK/                 member K's data directory
    DIR/nK.log              member K's stdout and stderr
    DIR/nK.pid              member K's process id while it runs
    DIR/certs/              with ``up --tls``: the CA, nK.pem + nK-key.pem, client.pem +
                            client-key.pem (:func:`raftkv.certs.init_cluster`, made once)

A TLS cluster (``up --tls``) serves https:// on its client and peer ports with mutual TLS
on both (etcd's ``--client-cert-auth`` and ``--peer-client-cert-auth``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raftkv.cli._common import FMT, CliError, Parser, int_flag
from raftkv.errors import ConfigError

if TYPE_CHECKING:
    import grpc

    from raftkv.client import TLS


__all__ = ["LocalCluster", "LocalMember", "add_cluster", "is_member_process", "serve_argv"]

DEFAULT_BASE_PORT = 23790
DEFAULT_SIZE = 3
MANIFEST = "cluster.json"
HEALTH_KEY = b"raftkv-health"
CERTS = "certs"
CLIENT = "client"
CERT_HOSTS = ("127.0.0.1", "localhost")

CLUSTER_EPILOG = """\
example:
  raftkv cluster up --size 3 --data-dir /tmp/rk      # prints the client endpoints
  etcdctl --endpoints=$(raftkv cluster status --data-dir /tmp/rk --endpoints) put foo bar
  raftkv cluster status --data-dir /tmp/rk
  raftkv cluster down --data-dir /tmp/rk
  raftkv cluster up --tls --data-dir /tmp/rk-tls      # mutual TLS; prints etcdctl's flags
"""


def add_cluster(sub: Any) -> None:
    """Add ``raftkv cluster up|status|down``."""
    cluster = sub.add_parser("cluster", help="start, inspect or stop a local cluster",
                             formatter_class=FMT, epilog=CLUSTER_EPILOG,
                             description="A local N-member cluster on 127.0.0.1, run in the "
                                         "background, all of it under one directory.")
    csub = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True,
                                  parser_class=Parser)
    up = csub.add_parser(
        "up", help="start a local cluster and wait for a leader", formatter_class=FMT,
        description="Start SIZE members (nK: client port BASE+2(K-1), peer port "
                    "BASE+2(K-1)+1 on 127.0.0.1), wait until the cluster answers a "
                    "linearizable read, and print the client endpoints (on stdout; with "
                    "--tls, the etcdctl and raftkv flags to use on stderr). A cluster "
                    "directory keeps what it was made with: size, base port and TLS.",
        epilog="example:\n  raftkv cluster up --size 3 --data-dir /tmp/rk --base-port 23790\n"
               "  export ETCDCTL_API=3 ENDPOINTS=$(raftkv cluster up --data-dir /tmp/rk)\n"
               "  raftkv cluster up --tls --data-dir /tmp/rk-tls   # certificates in "
               "/tmp/rk-tls/certs\n")
    up.add_argument("--size", type=int_flag, default=None,
                    help=f"number of members (default: {DEFAULT_SIZE}, or as recorded in DIR)")
    up.add_argument("--data-dir", required=True, metavar="DIR", help="where everything goes")
    up.add_argument("--base-port", type=int_flag, default=None, metavar="P",
                    help=f"first client port (default: {DEFAULT_BASE_PORT}, or as recorded)")
    up.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                    help="how long to wait for the cluster to answer (default: 30)")
    up.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                    help="https:// and mutual TLS on the client and peer ports, with "
                         f"certificates made once in DIR/{CERTS} (default: off, or as "
                         "recorded in DIR)")
    up.set_defaults(func=_cmd_up)
    status = csub.add_parser(
        "status", help="one line per member", formatter_class=FMT,
        description="Print one line per member: name, pid, alive, client URL, TLS on or "
                    "off, and whether a linearizable Range answered. Exit 1 unless every "
                    "member is healthy.",
        epilog="example:\n  raftkv cluster status --data-dir /tmp/rk\n")
    status.add_argument("--data-dir", required=True, metavar="DIR")
    status.add_argument("--endpoints", action="store_true",
                        help="print only the comma-separated client endpoints")
    status.set_defaults(func=_cmd_status)
    down = csub.add_parser(
        "down", help="stop the members recorded in DIR", formatter_class=FMT,
        description="SIGTERM exactly the recorded member processes, wait, then SIGKILL the "
                    "ones still running. Data and cluster.json stay; 'up' restarts them.",
        epilog="example:\n  raftkv cluster down --data-dir /tmp/rk\n")
    down.add_argument("--data-dir", required=True, metavar="DIR")
    down.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                      help="grace period before SIGKILL (default: 10)")
    down.set_defaults(func=_cmd_down)

# -- layout ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LocalMember:
    """One member of a local cluster and its files under the cluster directory."""

    name: str
    client_port: int
    peer_port: int
    directory: Path
    tls: bool = False

    @property
    def client_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.peer_port}"

    @property
    def _scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the client listener."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / self.name

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"


@dataclass(frozen=True, slots=True)
class LocalCluster:
    """What ``cluster.json`` records."""

    directory: Path
    size: int
    base_port: int
    token: str
    tls: bool = False

    @property
    def members(self) -> tuple[LocalMember, ...]:
        return tuple(LocalMember(f"n{k + 1}", self.base_port + 2 * k,
                                 self.base_port + 2 * k + 1, self.directory, self.tls)
                     for k in range(self.size))

    @property
    def cert_dir(self) -> Path:
        return self.directory / CERTS

    def client_files(self) -> tuple[Path, Path, Path]:
        """The CA, the client certificate and its key (for etcdctl or raftkv)."""
        d = self.cert_dir
        return d / "ca.pem", d / f"{CLIENT}.pem", d / f"{CLIENT}-key.pem"

    def client_tls(self) -> TLS | None:
        """The client's TLS settings for this cluster, or None without TLS."""
        from raftkv.client import TLS

        if not self.tls:
            return None
        ca, cert, key = (str(p) for p in self.client_files())
        return TLS(ca_file=ca, cert_file=cert, key_file=key)

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> str:
        return ",".join(m.client_url for m in self.members)

    def to_json(self) -> str:
        doc = {
            "version": 1, "size": self.size, "base_port": self.base_port,
            "initial_cluster_token": self.token, "tls": self.tls,
            "initial_cluster": self.initial_cluster, "endpoints": self.endpoints,
            "members": [{"name": m.name, "client_url": m.client_url, "peer_url": m.peer_url,
                         "data_dir": str(m.data_dir), "log": str(m.log),
                         "pid_file": str(m.pid_file)} for m in self.members],
        }
        return json.dumps(doc, indent=2) + "\n"


def _read_manifest(directory: Path) -> LocalCluster | None:
    path = directory / MANIFEST
    try:
        doc = json.loads(path.read_text())
        tls = doc.get("tls", False)  # absent: written before TLS existed
        if not isinstance(tls, bool):
            raise ValueError(f"tls is {tls!r}, not true or false")
        return LocalCluster(directory, int(doc["size"]), int(doc["base_port"]),
                            str(doc["initial_cluster_token"]), tls)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{path} is unreadable or not a raftkv cluster file ({exc}); "
                       "remove it or use another --data-dir") from exc


def _require_manifest(directory: Path) -> LocalCluster:
    cluster = _read_manifest(directory)
    if cluster is None:
        raise CliError(f"no cluster in {directory} ({MANIFEST} not found); start one with "
                       f"'raftkv cluster up --data-dir {directory}'")
    return cluster


# -- local cluster: processes --------------------------------------------------------------

def _read_pid(member: LocalMember) -> int | None:
    try:
        return int(member.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def is_member_process(pid: int, member: LocalMember) -> bool:
    """True if ``pid`` is ``python -m raftkv serve`` running with this member's data dir.

    Read from ``/proc/PID/cmdline``, so a PID reused by another process, an exited
    process and a zombie (whose command line is empty) all answer False.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    args = raw.decode(errors="replace").split("\0")
    ours = any(args[i:i + 3] == ["-m", "raftkv", "serve"] for i in range(len(args)))
    want = str(member.data_dir)
    return ours and any(a == "--data-dir" and b == want for a, b in itertools.pairwise(args))


def _running_pid(member: LocalMember) -> int | None:
    pid = _read_pid(member)
    return pid if pid is not None and is_member_process(pid, member) else None


def _channel(client_url: str, tls: TLS | None) -> grpc.Channel:
    """A blocking gRPC channel to ``client_url`` (``http(s)://host:port``)."""
    import grpc

    address = client_url.split("://", 1)[-1].rstrip("/")
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.credentials())


def probe(client_url: str, timeout_s: float, tls: TLS | None = None) -> str | None:
    """Send a linearizable ``Range(raftkv-health)`` (over TLS with ``tls``, e.g.
    :meth:`LocalCluster.client_tls`); None if it answered, else why not."""
    import grpc

    from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    channel = _channel(client_url, tls)
    try:
        stub: Any = rpc_pb2_grpc.KVStub  # generated without annotations
        stub(channel).Range(rpc_pb2.RangeRequest(key=HEALTH_KEY), timeout=timeout_s)
        return None
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    finally:
        channel.close()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parent.parent)  # so -m raftkv works uninstalled
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _tls_flags(cluster: LocalCluster, member: LocalMember) -> list[str]:
    """Mutual TLS on both listeners: one member certificate for both (as etcd's guides)."""
    if not cluster.tls:
        return []
    d = cluster.cert_dir
    cert, key, ca = (str(d / f"{member.name}.pem"), str(d / f"{member.name}-key.pem"),
                     str(d / "ca.pem"))
    return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
            "--client-cert-auth", "true",
            "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
            "--peer-client-cert-auth", "true"]


def serve_argv(cluster: LocalCluster, member: LocalMember) -> list[str]:
    """The command line that runs ``member`` of a local cluster."""
    return [sys.executable, "-m", "raftkv", "serve",
            "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", cluster.initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", cluster.token, *_tls_flags(cluster, member)]


def _spawn(cluster: LocalCluster, member: LocalMember) -> subprocess.Popen[bytes]:
    with member.log.open("ab") as log:  # the member creates its own data directory
        proc = subprocess.Popen(serve_argv(cluster, member), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
                                start_new_session=True)  # survives the terminal's Ctrl-C
    member.pid_file.write_text(f"{proc.pid}\n")
    return proc


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty)"


# -- cluster up ---------------------------------------------------------------------------

def _plan(directory: Path, size: int | None, base_port: int | None,
          tls: bool | None = None) -> LocalCluster:
    recorded = _read_manifest(directory)
    if recorded is not None:
        if (size not in (None, recorded.size)
                or base_port not in (None, recorded.base_port)):
            raise CliError(f"{directory} holds a {recorded.size}-member cluster on base port "
                           f"{recorded.base_port}; use those values or another --data-dir")
        if tls is not None and tls != recorded.tls:
            made, flag, other = (("with TLS (https://)", "--no-tls", "a plaintext")
                                 if recorded.tls else
                                 ("without TLS (http://)", "--tls", "a TLS"))
            raise CliError(f"{directory} holds a cluster made {made}, and its members keep "
                           f"their URLs; run 'raftkv cluster up --data-dir {directory}' "
                           f"without {flag}, or use another --data-dir for {other} cluster")
        return recorded
    size = DEFAULT_SIZE if size is None else size
    base_port = DEFAULT_BASE_PORT if base_port is None else base_port
    if size < 1:
        raise ConfigError(f"--size={size} must be at least 1")
    if not 1024 <= base_port <= 65535 - 2 * size + 1:
        raise ConfigError(f"--base-port={base_port} must leave room for {2 * size} ports "
                          f"in 1024..65535")
    digest = hashlib.sha1(str(directory).encode(), usedforsecurity=False).hexdigest()[:8]
    return LocalCluster(directory, size, base_port, f"raftkv-local-{digest}", bool(tls))


def _ensure_certs(cluster: LocalCluster) -> bool:
    """Make the cluster's certificates unless they are all there and valid for another
    day; True if it made them (the CA in DIR/certs is reused when there)."""
    from datetime import UTC, datetime, timedelta

    from raftkv import certs

    d = cluster.cert_dir
    names = [m.name for m in cluster.members]
    leaves = [d / f"{n}.pem" for n in [*names, CLIENT]]
    keys = [d / "ca-key.pem", *(d / f"{n}-key.pem" for n in [*names, CLIENT])]
    soon = datetime.now(UTC) + timedelta(days=1)
    try:
        if (all(p.exists() for p in keys) and (d / "ca.pem").exists()
                and all(certs.load_cert(p).not_valid_after_utc > soon for p in leaves)):
            return False
    except (OSError, ConfigError):
        pass  # missing or unreadable: issue them again
    certs.init_cluster(d, names, hosts=CERT_HOSTS, clients=(CLIENT,))
    return True


def _check_can_start(cluster: LocalCluster) -> None:
    for member in cluster.members:
        pid = _running_pid(member)
        if pid is not None:
            raise CliError(f"{cluster.directory} already has a running cluster ({member.name} "
                           f"is pid {pid}); run 'raftkv cluster down --data-dir "
                           f"{cluster.directory}' first")
        member.pid_file.unlink(missing_ok=True)  # stale
    for member in cluster.members:
        for port in (member.client_port, member.peer_port):
            if _port_in_use(port):
                raise CliError(f"port {port} on 127.0.0.1 (for {member.name}) is in use; "
                               "choose another --base-port")


def _cmd_up(ns: argparse.Namespace) -> int:
    directory = Path(ns.data_dir).resolve()
    if ns.timeout <= 0:
        raise ConfigError(f"--timeout={ns.timeout} must be positive")
    directory.mkdir(parents=True, exist_ok=True)
    cluster = _plan(directory, ns.size, ns.base_port, ns.tls)
    _check_can_start(cluster)
    made = _ensure_certs(cluster) if cluster.tls else False
    (directory / MANIFEST).write_text(cluster.to_json())
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for member in cluster.members:
            procs.append(_spawn(cluster, member))
        _wait_ready(cluster, procs, ns.timeout)
    except BaseException as exc:
        if isinstance(exc, CliError | OSError):
            for member in cluster.members:
                sys.stderr.write(f"--- {member.log} (last lines)\n{_tail(member.log)}\n")
        _stop_started(cluster, procs)
        raise
    sys.stderr.write(f"raftkv: {cluster.size}-member cluster is up"
                     f"{' with mutual TLS' if cluster.tls else ''}; data and logs in "
                     f"{directory}\n")
    if cluster.tls:
        sys.stderr.write(f"raftkv: certificates in {cluster.cert_dir} "
                         f"({'made now' if made else 'reused'}); talk to it with:\n"
                         + "".join(f"  {line}\n" for line in client_commands(cluster)))
    print(cluster.endpoints)
    return 0


def client_commands(cluster: LocalCluster) -> list[str]:
    """``etcdctl`` and ``raftkv`` with the flags that reach the cluster (TLS files too)."""
    flags = [f"--endpoints={cluster.endpoints}"]
    if cluster.tls:
        ca, cert, key = cluster.client_files()
        flags += ["--cacert", str(ca), "--cert", str(cert), "--key", str(key)]
    return [shlex.join([tool, *flags]) for tool in ("etcdctl", "raftkv")]


def _wait_ready(cluster: LocalCluster, procs: list[subprocess.Popen[bytes]],
                timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no member reachable yet"
    ready: set[str] = set()
    while True:
        for member, proc in zip(cluster.members, procs, strict=True):
            code = proc.poll()
            if code is not None:
                raise CliError(f"member {member.name} exited with status {code} during "
                               f"startup; see {member.log}")
        pending = [m for m in cluster.members if m.name not in ready]
        for member in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CliError(f"the cluster did not answer a linearizable Range on every "
                               f"member within {timeout_s:g}s (last: {last}); see the logs "
                               f"in {cluster.directory}")
            why = probe(member.client_url, min(1.0, remaining), cluster.client_tls())
            if why is None:
                ready.add(member.name)
            else:
                last = f"{member.name}: {why}"
        if len(ready) == len(cluster.members):
            if _all_published(cluster, deadline):
                return  # every member is up, sees a leader and published its client URL
            if time.monotonic() >= deadline:
                raise CliError(f"not every member published its client URL within "
                               f"{timeout_s:g}s; see the logs in {cluster.directory}")
        time.sleep(0.2)


def _all_published(cluster: LocalCluster, deadline: float) -> bool:
    """Whether the member list shows every member's client URL (members publish them
    through the log just after starting; `member list` and `status` need them)."""
    import grpc

    from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    with _channel(cluster.members[0].client_url, cluster.client_tls()) as channel:
        stub: Any = rpc_pb2_grpc.ClusterStub  # generated without annotations
        try:
            r = stub(channel).MemberList(rpc_pb2.MemberListRequest(linearizable=True),
                                         timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except grpc.RpcError:
            return False
    return len(r.members) >= len(cluster.members) and all(m.clientURLs for m in r.members)


def _stop_started(cluster: LocalCluster, procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + 10.0
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for member in cluster.members:
        member.pid_file.unlink(missing_ok=True)


# -- cluster status / down ----------------------------------------------------------------

def _cmd_status(ns: argparse.Namespace) -> int:
    cluster = _require_manifest(Path(ns.data_dir).resolve())
    if ns.endpoints:
        print(cluster.endpoints)
        return 0
    healthy = True
    width = max(len(m.name) for m in cluster.members)
    for member in cluster.members:
        pid = _running_pid(member)
        recorded = _read_pid(member)
        why = (probe(member.client_url, 2.0, cluster.client_tls()) if pid is not None
               else "not running")
        healthy = healthy and why is None
        print(f"{member.name:<{width}}  pid {recorded if recorded is not None else '-':<7}  "
              f"{'alive' if pid is not None else 'dead ':<5}  {member.client_url}  "
              f"tls {'on ' if cluster.tls else 'off'}  "
              f"range {'ok' if why is None else 'failed (' + why + ')'}")
    return 0 if healthy else 1


def _cmd_down(ns: argparse.Namespace) -> int:
    cluster = _require_manifest(Path(ns.data_dir).resolve())
    signalled: dict[str, int] = {}
    for member in cluster.members:
        pid = _read_pid(member)
        if pid is None:
            print(f"{member.name}: not running")
        elif not is_member_process(pid, member):
            print(f"{member.name}: pid {pid} is not this member's raftkv serve process "
                  "(stale PID file); not signalled")
            member.pid_file.unlink(missing_ok=True)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            signalled[member.name] = pid
    by_name = {m.name: m for m in cluster.members}
    deadline = time.monotonic() + max(0.0, ns.timeout)
    while signalled:
        for name, pid in list(signalled.items()):
            member = by_name[name]
            if not is_member_process(pid, member):
                print(f"{name}: stopped (pid {pid})")
            elif time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                print(f"{name}: killed with SIGKILL after {ns.timeout:g}s (pid {pid})")
            else:
                continue
            member.pid_file.unlink(missing_ok=True)
            del signalled[name]
        if signalled:
            time.sleep(0.1)
    return 0
