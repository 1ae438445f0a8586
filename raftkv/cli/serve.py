"""``raftkv serve`` (run one member) and ``raftkv snapshot restore``: etcd's flag names."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from raftkv.cli._common import FMT, int_flag
from raftkv.server.config import (
    OPTION_KEYS,
    ServerConfig,
    coerce_options,
    read_config_file,
)

__all__ = ["add_serve", "add_snapshot_restore", "serve_config"]

SERVE_EPILOG = """\
flags override --config-file, whose keys are the flag names (dashes or underscores).

example, member n1 of a 3-member cluster on one machine:
  raftkv serve --name n1 --data-dir data/n1 \\
    --listen-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \\
    --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382,n3=http://127.0.0.1:2384
  raftkv serve --config-file cluster/3/n1.toml
"""


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
_TLS_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--cert-file", "FILE", "certificate of the client listener (https:// URLs)"),
    ("--key-file", "FILE", "unencrypted key of --cert-file"),
    ("--trusted-ca-file", "FILE",
     "CA bundle that signs client certificates; giving it requires client certificates"),
    ("--client-crl-file", "FILE", "PEM CRL: client certificates it lists are refused"),
    ("--client-cert-allowed-hostname", "NAMES",
     "accept only client certificates valid for one of these hostnames (SAN match)"),
    ("--peer-cert-file", "FILE", "certificate of the peer listener and of dialed peers"),
    ("--peer-key-file", "FILE", "unencrypted key of --peer-cert-file"),
    ("--peer-trusted-ca-file", "FILE",
     "CA bundle that signs peer certificates; giving it requires peer certificates"),
    ("--peer-crl-file", "FILE", "PEM CRL: peer certificates it lists are refused"),
    ("--peer-cert-allowed-cn", "CNS", "accept only peer certificates with one of these CNs"),
    ("--peer-cert-allowed-hostname", "NAMES",
     "accept only peer certificates valid for one of these hostnames (SAN match)"),
    ("--cipher-suites", "SUITES",
     "TLS 1.2 cipher suites, Go's names, comma-separated (default: OpenSSL's secure set)"),
    ("--tls-min-version", "VERSION", "TLS1.2 or TLS1.3 (default: TLS1.2)"),
    ("--tls-max-version", "VERSION", "TLS1.2 or TLS1.3 (default: TLS1.3)"),
    ("--auth-token", "simple", "token provider once auth is enabled (default: simple)"),
    ("--audit-log", "FILE",
     "append one JSON line per refused request and per auth change (never a secret)"),
)
_AUTH_INT_FLAGS: tuple[tuple[str, str], ...] = (
    ("--auth-token-ttl", "seconds a simple token lives after its last use (default: 300)"),
    ("--bcrypt-cost", "bcrypt cost of stored password hashes, 4..31 (default: 10)"),
)
_TLS_BOOL_FLAGS: tuple[tuple[str, str], ...] = (
    ("--client-cert-auth", "require client certificates signed by --trusted-ca-file"),
    ("--peer-client-cert-auth", "require peer certificates signed by --peer-trusted-ca-file"),
)
_SERVE_INT_FLAGS: tuple[tuple[str, str], ...] = (
    ("--heartbeat-interval", "heartbeat interval (the tick) in ms (default: 100)"),
    ("--election-timeout", "election timeout in ms, at least 5 heartbeats (default: 1000)"),
    ("--snapshot-count", "applied entries between snapshots (default: 100000, as etcd)"),
    ("--snapshot-catchup-entries", "entries kept behind a snapshot (default: 5000)"),
    ("--max-request-bytes", "largest client request in bytes (default: 1572864)"),
    ("--quota-backend-bytes", "backend size limit in bytes (default: 2147483648)"),
    ("--max-txn-ops", "most operations in one txn, same on every member (default: 128)"),
)


def add_serve(sub: Any) -> None:
    """Add ``raftkv serve``."""
    p = sub.add_parser("serve", help="run one member in the foreground", formatter_class=FMT,
                       description="Run one raftkv member in the foreground until SIGTERM or "
                                   "Ctrl-C. Flag names and defaults are etcd's.",
                       epilog=SERVE_EPILOG)
    p.add_argument("--config-file", metavar="FILE", help="TOML file of flag values")
    for flag, metavar, text in _SERVE_FLAGS:
        p.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=text)
    for flag, text in _SERVE_INT_FLAGS:
        p.add_argument(flag, metavar="N", type=int_flag, default=argparse.SUPPRESS, help=text)
    add_tls_flags(p)
    p.set_defaults(func=_cmd_serve)


def add_tls_flags(p: argparse.ArgumentParser) -> None:
    """etcd's security flags (``raftkv serve``)."""
    g = p.add_argument_group("security (etcd's flags; see docs/security.md)")
    for flag, metavar, text in _TLS_FLAGS:
        g.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=text)
    for flag, text in _TLS_BOOL_FLAGS:
        g.add_argument(flag, nargs="?", const="true", metavar="true|false",
                       default=argparse.SUPPRESS, help=text)
    for flag, text in _AUTH_INT_FLAGS:
        g.add_argument(flag, metavar="N", type=int_flag, default=argparse.SUPPRESS, help=text)


def add_snapshot_restore(ssub: Any) -> None:
    """Add ``raftkv snapshot restore`` to the ``snapshot`` subcommands."""
    p = ssub.add_parser(
        "restore", formatter_class=FMT,
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
        p.add_argument(flag, metavar="N", type=int_flag, default=argparse.SUPPRESS, help=text)
    p.set_defaults(func=_cmd_snapshot_restore)


def _cmd_snapshot_restore(ns: argparse.Namespace) -> int:
    from raftkv.server.restore import restore_snapshot

    cfg = serve_config(ns)
    if sys.stderr.isatty():  # a spinner while a large snapshot is read and written
        from rich.console import Console

        with Console(stderr=True).status(f"restoring {ns.file} into {cfg.data_dir} ..."):
            index = restore_snapshot(Path(ns.file), cfg)
    else:
        index = restore_snapshot(Path(ns.file), cfg)
    print(f"restored {ns.file} into {cfg.data_dir} for member {cfg.name} "
          f"({cfg.member_id:x}) of cluster {cfg.cluster_id:x}, starting at index {index}")
    return 0


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
