"""``raftkv bench``: the argparse definition (wired into ``raftkv`` by the CLI) and the
command itself. ``python -m raftkv.bench`` runs it on its own."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from raftkv.bench.config import (
    WORKLOADS,
    BenchConfig,
    BenchConfigError,
    parse_endpoints,
    uses_https,
)
from raftkv.bench.report import table, to_json
from raftkv.bench.runner import BenchError, run

DESCRIPTION = """\
Drive any etcd v3 endpoint list (raftkv or etcd) with one workload and report throughput,
latency percentiles, errors and the CPU the client itself used.

workloads:
  put     Put of --value-size bytes to a random key of --keys
  get     linearizable Range of one key (--serializable: served by the member asked);
          the key space is written first unless --no-preload
  txn     compare-and-swap: put if the key's mod revision is the one last seen, else read
  lock    v3lock Lock (with a lease), a write guarded by the lock key, Unlock
  watch   --watchers streams on a prefix while --concurrency writers put; reports events
          delivered per second and the delivery lag (put sent -> event received)

examples:
  raftkv bench put --endpoints 127.0.0.1:2379 --concurrency 64 --procs 2
  raftkv bench get --serializable --duration 5 -w json
  raftkv bench put --endpoints https://127.0.0.1:23790 --cacert DIR/certs/ca.pem \
      --cert DIR/certs/client.pem --key DIR/certs/client-key.pem   # (raftkv cluster up --tls)
"""


def add_parser(subparsers: Any) -> None:
    """Add ``bench`` to an ``add_subparsers()`` object; sets ``func``."""
    p = subparsers.add_parser("bench", help="benchmark an etcd v3 endpoint list",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)


def configure(p: argparse.ArgumentParser) -> None:
    p.error = _one_line_error(p)  # type: ignore[method-assign]
    p.add_argument("workload", choices=WORKLOADS, metavar="WORKLOAD",
                   help=f"one of {', '.join(WORKLOADS)}")
    p.add_argument("--endpoints", default="127.0.0.1:2379",
                   help="comma-separated host:port list; https:// URLs turn TLS on "
                        "(default %(default)s)")
    g = p.add_argument_group("TLS (etcdctl's flags; any of them turns TLS on)")
    g.add_argument("--cacert", metavar="FILE",
                   help="verify the servers with this CA bundle (default: system roots)")
    g.add_argument("--cert", metavar="FILE", help="client certificate for mutual TLS")
    g.add_argument("--key", metavar="FILE", help="private key of --cert")
    g.add_argument("--insecure-skip-tls-verify", action="store_true",
                   help="TLS without verifying the servers' certificates (tests only)")
    p.add_argument("--user", metavar="NAME:PASSWORD",
                   help="with auth on: authenticate once per client process and send the "
                        "token with every request")
    p.add_argument("--concurrency", "--clients", type=int, default=64, dest="concurrency",
                   help="requests in flight in total (default %(default)s)")
    p.add_argument("--procs", type=int, default=2,
                   help="client processes sharing them (default %(default)s)")
    p.add_argument("--conns", type=int, default=1,
                   help="gRPC connections per endpoint per process (default %(default)s)")
    p.add_argument("--keys", type=int, default=10_000, help="key space (default %(default)s)")
    p.add_argument("--value-size", type=int, default=256,
                   help="bytes per value (default %(default)s)")
    p.add_argument("--duration", type=float, default=10.0,
                   help="measured seconds (default %(default)s)")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds run before measuring (default %(default)s)")
    p.add_argument("--serializable", action="store_true",
                   help="get: serializable reads (no ReadIndex round)")
    p.add_argument("--watchers", type=int, default=16,
                   help="watch: watch streams in total (default %(default)s)")
    p.add_argument("--prefix", default="bench/", help="key prefix (default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="per-request deadline in seconds (default %(default)s)")
    p.add_argument("--preload", action=argparse.BooleanOptionalAction, default=True,
                   help="get: write the key space first (default on)")
    p.add_argument("-w", "--write-out", choices=("table", "json"), default="table",
                   help="output format (default %(default)s)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=command)


def _one_line_error(p: argparse.ArgumentParser) -> Any:
    def error(message: str) -> NoReturn:
        sys.stderr.write(f"{p.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)
    return error


def config_from_args(a: argparse.Namespace) -> BenchConfig:
    """The run the flags describe (validated).

    Raises:
        BenchConfigError: a bad flag value, named in the message.
    """
    return BenchConfig(
        endpoints=parse_endpoints(a.endpoints), workload=a.workload,
        serializable=a.serializable, concurrency=a.concurrency, procs=a.procs, conns=a.conns,
        keys=a.keys, value_size=a.value_size, duration_s=a.duration, warmup_s=a.warmup,
        watchers=a.watchers, prefix=a.prefix.encode(), timeout_s=a.timeout,
        preload=a.preload, tls=uses_https(a.endpoints), cacert=a.cacert, cert=a.cert,
        key=a.key, insecure_skip_verify=a.insecure_skip_tls_verify, user=a.user).validate()


def command(a: argparse.Namespace) -> int:
    """Run the benchmark the flags describe; print the report. Returns the exit status."""
    try:
        cfg = config_from_args(a)
        progress = sys.stderr.isatty() if a.progress is None else a.progress
        result = run(cfg, progress=progress)
    except (BenchConfigError, BenchError) as exc:
        sys.stderr.write(f"raftkv bench: error: {exc}\n")
        return 2 if isinstance(exc, BenchConfigError) else 1
    except KeyboardInterrupt:
        sys.stderr.write("raftkv bench: interrupted\n")
        return 130
    if a.write_out == "json":
        print(to_json([result]))
    else:
        print(table([result]), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="raftkv bench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    a = p.parse_args(argv)
    return int(a.func(a))
