"""The ``raftkv`` command: run a member, and start / inspect / stop a local cluster.

Wiring only: configuration lives in :mod:`raftkv.server.config`, the server in
:mod:`raftkv.server.app` (imported only by ``serve``, so the other commands work without
it). Usage errors print one line, ``raftkv: error: ...``, and exit 2; runtime failures
print one line and exit 1; neither prints a traceback.

Local clusters (``raftkv cluster up``) keep everything under one directory::

    DIR/cluster.json        members, URLs, token and endpoints (written by ``up``)
    DIR/nK/                 member K's data directory
    DIR/nK.log              member K's stdout and stderr
    DIR/nK.pid              member K's process id while it runs
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

from raftkv.errors import ConfigError, RaftKVError
from raftkv.server.config import (
    OPTION_KEYS,
    ServerConfig,
    coerce_options,
    read_config_file,
)

__all__ = ["main"]

PROG = "raftkv"
DEFAULT_BASE_PORT = 23790
DEFAULT_SIZE = 3
MANIFEST = "cluster.json"
HEALTH_KEY = b"raftkv-health"


class CliError(Exception):
    """A runtime failure reported as one line; exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"{PROG}: error: {text} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``raftkv`` command line and return its exit status."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    func = cast(Callable[[argparse.Namespace], int], ns.func)
    try:
        return func(ns)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except (CliError, RaftKVError) as exc:
        return _fail(str(exc), 1)
    except OSError as exc:  # e.g. a directory that cannot be created or written
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", 1)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return code


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("raftkv")
    except Exception:  # not installed: running from a source tree
        import raftkv

        return raftkv.__version__


# -- parser -------------------------------------------------------------------------------

_FMT = argparse.RawDescriptionHelpFormatter

SERVE_EPILOG = """\
flags override --config-file, whose keys are the flag names (dashes or underscores).

example, member n1 of a 3-member cluster on one machine:
  raftkv serve --name n1 --data-dir data/n1 \\
    --listen-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \\
    --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382,n3=http://127.0.0.1:2384
  raftkv serve --config-file cluster/3/n1.toml
"""

CLUSTER_EPILOG = """\
example:
  raftkv cluster up --size 3 --data-dir /tmp/rk      # prints the client endpoints
  etcdctl --endpoints=$(raftkv cluster status --data-dir /tmp/rk --endpoints) put foo bar
  raftkv cluster status --data-dir /tmp/rk
  raftkv cluster down --data-dir /tmp/rk
"""


def build_parser() -> _Parser:
    """The ``raftkv`` argument parser with every subcommand."""
    parser = _Parser(prog=PROG, formatter_class=_FMT,
                     description="raftkv: a Raft-replicated key-value store that speaks "
                                 "the etcd v3 API.",
                     epilog="example:\n  raftkv cluster up --size 3 --data-dir /tmp/rk\n"
                            "  raftkv serve --name n1 --data-dir n1.raftkv\n")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)
    _add_serve(sub)
    _add_cluster(sub)
    _add_snapshot(sub)
    version = sub.add_parser("version", help="print the version", formatter_class=_FMT,
                             description="Print raftkv's version.",
                             epilog="example:\n  raftkv version\n")
    version.set_defaults(func=_cmd_version)
    return parser


def _int_flag(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


_SERVE_FLAGS: tuple[tuple[str, str, str], ...] = (
    # (flag, metavar, help)
    ("--name", "NAME", "this member's name in --initial-cluster (default: default)"),
    ("--data-dir", "DIR", "data directory (default: <name>.raftkv)"),
    ("--listen-client-urls", "URLS", "client URLs to listen on (default: http://127.0.0.1:2379)"),
    ("--advertise-client-urls", "URLS", "client URLs to tell clients (default: listen URLs)"),
    ("--listen-peer-urls", "URLS", "peer URLs to listen on (default: http://127.0.0.1:2380)"),
    ("--initial-advertise-peer-urls", "URLS",
     "peer URL other members reach this one at (default: listen peer URLs)"),
    ("--initial-cluster", "N=URL,...",
     "bootstrap members, name=peer-url pairs (default: <name>=<advertised peer URL>)"),
    ("--initial-cluster-state", "new|existing",
     "'new' bootstraps, 'existing' joins a running cluster (default: new)"),
    ("--initial-cluster-token", "TOKEN", "unique name of this cluster (default: raftkv-cluster)"),
    ("--log-level", "LEVEL", "debug, info, warn or error (default: info)"),
)
_SERVE_INT_FLAGS: tuple[tuple[str, str], ...] = (
    ("--heartbeat-interval", "heartbeat interval (the tick) in ms (default: 100)"),
    ("--election-timeout", "election timeout in ms, at least 5 heartbeats (default: 1000)"),
    ("--snapshot-count", "applied entries between snapshots (default: 10000)"),
    ("--snapshot-catchup-entries", "entries kept behind a snapshot (default: 5000)"),
    ("--max-request-bytes", "largest client request in bytes (default: 1572864)"),
    ("--quota-backend-bytes", "backend size limit in bytes (default: 2147483648)"),
)


def _add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run one member in the foreground", formatter_class=_FMT,
                       description="Run one raftkv member in the foreground until SIGTERM or "
                                   "Ctrl-C. Flag names and defaults are etcd's.",
                       epilog=SERVE_EPILOG)
    p.add_argument("--config-file", metavar="FILE", help="TOML file of flag values")
    for flag, metavar, text in _SERVE_FLAGS:
        p.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=text)
    for flag, text in _SERVE_INT_FLAGS:
        p.add_argument(flag, metavar="N", type=_int_flag, default=argparse.SUPPRESS, help=text)
    p.set_defaults(func=_cmd_serve)


def _add_snapshot(sub: Any) -> None:
    snap = sub.add_parser("snapshot", help="restore a snapshot into a new member's data dir",
                          formatter_class=_FMT, description="Work with snapshot files.",
                          epilog="example:\n  raftkv snapshot restore snap.db --name n1 ...\n")
    ssub = snap.add_subparsers(dest="snapshot_command", metavar="COMMAND", required=True,
                               parser_class=_Parser)
    p = ssub.add_parser(
        "restore", formatter_class=_FMT,
        help="restore a snapshot file into the data dir of a member of a new cluster",
        description="Restore FILE (written by `etcdctl snapshot save`) into --data-dir for "
                    "one member of a NEW cluster. Run it once per member with that member's "
                    "flags, then start each with `raftkv serve` and the same flags.",
        epilog="example:\n  etcdctl --endpoints=127.0.0.1:2379 snapshot save snap.db\n"
               "  raftkv snapshot restore snap.db --name n1 --data-dir n1.raftkv \\\n"
               "      --initial-cluster n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380 \\\n"
               "      --initial-advertise-peer-urls http://10.0.0.1:2380\n"
               "  raftkv serve --name n1 --data-dir n1.raftkv --initial-cluster ... (same)\n")
    p.add_argument("file", metavar="FILE", help="the snapshot file")
    p.add_argument("--config-file", metavar="FILE", help="TOML file of flag values")
    for flag, metavar, text in _SERVE_FLAGS:
        p.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=text)
    for flag, text in _SERVE_INT_FLAGS:
        p.add_argument(flag, metavar="N", type=_int_flag, default=argparse.SUPPRESS, help=text)
    p.set_defaults(func=_cmd_snapshot_restore)


def _cmd_snapshot_restore(ns: argparse.Namespace) -> int:
    from raftkv.server.restore import restore_snapshot

    cfg = serve_config(ns)
    index = restore_snapshot(Path(ns.file), cfg)
    print(f"restored {ns.file} into {cfg.data_dir} for member {cfg.name} "
          f"({cfg.member_id:x}) of cluster {cfg.cluster_id:x}, starting at index {index}")
    return 0


def _add_cluster(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="start, inspect or stop a local cluster",
                             formatter_class=_FMT, epilog=CLUSTER_EPILOG,
                             description="A local N-member cluster on 127.0.0.1, run in the "
                                         "background, all of it under one directory.")
    csub = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True,
                                  parser_class=_Parser)
    up = csub.add_parser(
        "up", help="start a local cluster and wait for a leader", formatter_class=_FMT,
        description="Start SIZE members (nK: client port BASE+2(K-1), peer port "
                    "BASE+2(K-1)+1 on 127.0.0.1), wait until the cluster answers a "
                    "linearizable read, and print the client endpoints.",
        epilog="example:\n  raftkv cluster up --size 3 --data-dir /tmp/rk --base-port 23790\n"
               "  export ETCDCTL_API=3 ENDPOINTS=$(raftkv cluster up --data-dir /tmp/rk)\n")
    up.add_argument("--size", type=_int_flag, default=None,
                    help=f"number of members (default: {DEFAULT_SIZE}, or as recorded in DIR)")
    up.add_argument("--data-dir", required=True, metavar="DIR", help="where everything goes")
    up.add_argument("--base-port", type=_int_flag, default=None, metavar="P",
                    help=f"first client port (default: {DEFAULT_BASE_PORT}, or as recorded)")
    up.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                    help="how long to wait for the cluster to answer (default: 30)")
    up.set_defaults(func=_cmd_up)
    status = csub.add_parser(
        "status", help="one line per member", formatter_class=_FMT,
        description="Print one line per member: name, pid, alive, client URL and whether "
                    "a linearizable Range answered. Exit 1 unless every member is healthy.",
        epilog="example:\n  raftkv cluster status --data-dir /tmp/rk\n")
    status.add_argument("--data-dir", required=True, metavar="DIR")
    status.add_argument("--endpoints", action="store_true",
                        help="print only the comma-separated client endpoints")
    status.set_defaults(func=_cmd_status)
    down = csub.add_parser(
        "down", help="stop the members recorded in DIR", formatter_class=_FMT,
        description="SIGTERM exactly the recorded member processes, wait, then SIGKILL the "
                    "ones still running. Data and cluster.json stay; 'up' restarts them.",
        epilog="example:\n  raftkv cluster down --data-dir /tmp/rk\n")
    down.add_argument("--data-dir", required=True, metavar="DIR")
    down.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                      help="grace period before SIGKILL (default: 10)")
    down.set_defaults(func=_cmd_down)


# -- serve --------------------------------------------------------------------------------

def serve_config(ns: argparse.Namespace) -> ServerConfig:
    """The validated configuration of ``raftkv serve``: file first, flags over it."""
    options: dict[str, object] = {}
    if ns.config_file:
        options.update(read_config_file(ns.config_file))
    flags = {key: getattr(ns, key.replace("-", "_")) for key in OPTION_KEYS
             if hasattr(ns, key.replace("-", "_"))}
    options.update(coerce_options(flags, source="command line"))
    cfg = ServerConfig(**cast("dict[str, Any]", options))
    cfg.validate()
    return cfg


def _cmd_serve(ns: argparse.Namespace) -> int:
    cfg = serve_config(ns)
    # gRPC's C core logs its own copy of errors we already report in one line (a port in
    # use, say); keep it quiet unless the operator asks for it.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    app = importlib.import_module("raftkv.server.app")
    run_server = cast(Callable[[ServerConfig], int], app.run_server)
    return run_server(cfg)  # configures logging from cfg.log_level


def _cmd_version(ns: argparse.Namespace) -> int:
    print(f"{PROG} {_version()}")
    return 0


# -- local cluster: layout ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LocalMember:
    """One member of a local cluster and its files under the cluster directory."""

    name: str
    client_port: int
    peer_port: int
    directory: Path

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

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

    @property
    def members(self) -> tuple[LocalMember, ...]:
        return tuple(LocalMember(f"n{k + 1}", self.base_port + 2 * k,
                                 self.base_port + 2 * k + 1, self.directory)
                     for k in range(self.size))

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> str:
        return ",".join(m.client_url for m in self.members)

    def to_json(self) -> str:
        doc = {
            "version": 1, "size": self.size, "base_port": self.base_port,
            "initial_cluster_token": self.token,
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
        return LocalCluster(directory, int(doc["size"]), int(doc["base_port"]),
                            str(doc["initial_cluster_token"]))
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


def probe(client_url: str, timeout_s: float) -> str | None:
    """Send a linearizable ``Range(raftkv-health)``; None if it answered, else why not."""
    import grpc

    from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    address = client_url.removeprefix("http://").rstrip("/")
    channel = grpc.insecure_channel(address)
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
            "--initial-cluster-token", cluster.token]


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

def _plan(directory: Path, size: int | None, base_port: int | None) -> LocalCluster:
    recorded = _read_manifest(directory)
    if recorded is not None:
        if (size not in (None, recorded.size)
                or base_port not in (None, recorded.base_port)):
            raise CliError(f"{directory} holds a {recorded.size}-member cluster on base port "
                           f"{recorded.base_port}; use those values or another --data-dir")
        return recorded
    size = DEFAULT_SIZE if size is None else size
    base_port = DEFAULT_BASE_PORT if base_port is None else base_port
    if size < 1:
        raise ConfigError(f"--size={size} must be at least 1")
    if not 1024 <= base_port <= 65535 - 2 * size + 1:
        raise ConfigError(f"--base-port={base_port} must leave room for {2 * size} ports "
                          f"in 1024..65535")
    digest = hashlib.sha1(str(directory).encode(), usedforsecurity=False).hexdigest()[:8]
    return LocalCluster(directory, size, base_port, f"raftkv-local-{digest}")


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
    cluster = _plan(directory, ns.size, ns.base_port)
    _check_can_start(cluster)
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
    sys.stderr.write(f"raftkv: {cluster.size}-member cluster is up; data and logs in "
                     f"{directory}\n")
    print(cluster.endpoints)
    return 0


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
            why = probe(member.client_url, min(1.0, remaining))
            if why is None:
                ready.add(member.name)
            else:
                last = f"{member.name}: {why}"
        if len(ready) == len(cluster.members):
            return  # every member is up and sees a leader: none died during startup
        time.sleep(0.2)


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
        why = probe(member.client_url, 2.0) if pid is not None else "not running"
        healthy = healthy and why is None
        print(f"{member.name:<{width}}  pid {recorded if recorded is not None else '-':<7}  "
              f"{'alive' if pid is not None else 'dead ':<5}  {member.client_url}  "
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
