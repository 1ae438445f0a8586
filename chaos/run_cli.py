"""``raftkv-chaos run`` and ``raftkv-chaos cleanup``: argument parsing and exit codes.

Exit status of ``run``: 0 when every check passes, 1 on any violation (the run's report
says which), 2 when the run itself could not be done (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from chaos.client import CLIENTS
from chaos.nemesis import KINDS
from chaos.runner import RunConfig, RunError, run
from chaos.runstate import cleanup
from chaos.workloads import WORKLOADS

__all__ = ["cleanup_main", "run_main"]

PROG = "raftkv-chaos"

RUN_EPILOG = """\
nemeses: partition (random halves, leader isolated, majority ring, bridge), kill (-9 and
restart), pause (SIGSTOP past the lease TTL, SIGCONT), member (remove, wipe, re-add as
existing), loss (random packet drops; netns only), slow (added latency; proxy only).

example:
  raftkv-chaos run --nodes 5 --workload register --nemesis partition,kill,pause \\
      --time-limit 60 --rate 200 --concurrency 10 --seed 1 --out runs/register-1
  open runs/register-1/report.html
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {' '.join(message.split())} "
                         f"(see '{self.prog} --help')\n")
        raise SystemExit(2)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value
    return parse


def _nemeses(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in KINDS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown nemesis {', '.join(bad) or repr(text)}; choose from {','.join(KINDS)}")
    return names


def build_parser() -> _Parser:
    p = _Parser(prog=f"{PROG} run", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Start a fresh raftkv cluster of real processes, run a workload "
                            "and a nemesis together, heal, check the history, write a report.",
                epilog=RUN_EPILOG)
    p.add_argument("--nodes", type=_positive(int), default=5, help="members (default: 5)")
    p.add_argument("--workload", choices=WORKLOADS, default="register")
    p.add_argument("--nemesis", type=_nemeses, default=("partition", "kill", "pause"),
                   help="comma-separated faults (default: partition,kill,pause)")
    p.add_argument("--time-limit", type=_positive(float), default=60.0, metavar="S",
                   help="seconds of workload under faults (default: 60)")
    p.add_argument("--rate", type=_positive(float), default=200.0,
                   help="target operations per second, all clients (default: 200)")
    p.add_argument("--concurrency", type=_positive(int), default=10,
                   help="logical clients, spread over the members (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="seeds the schedule and workload")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="results.json, history.jsonl, report.html and member logs go here")
    p.add_argument("--backend", choices=("netns", "proxy", "auto"), default="auto",
                   help="netns (root: namespaces + nftables), proxy (no root), auto")
    p.add_argument("--op-timeout", type=_positive(float), default=2.0, metavar="S",
                   help="client deadline per operation (default: 2)")
    p.add_argument("--client", choices=CLIENTS, default="raw",
                   help="raw: etcd v3 gRPC stubs, one member per client; raftkv: the set and "
                        "register workloads go through raftkv.client (de-duplicated retries, "
                        "failover; set also checks a resuming watch) (default: raw)")
    p.add_argument("--keys", type=_positive(int), default=30,
                   help="register workload: number of keys (default: 30)")
    p.add_argument("--snapshot-count", type=_positive(int), default=None, metavar="N",
                   help="members snapshot and compact their log every N applied entries, "
                        "keeping N/5 behind (default: the server's, 100000): a small N "
                        "makes members that fall behind catch up from a snapshot")
    p.add_argument("--tls", action="store_true",
                   help="mutual TLS everywhere: a CA and certificates made in DIR/tls, "
                        "https:// client and peer URLs, --client-cert-auth and "
                        "--peer-client-cert-auth on every member, and every harness client "
                        "presenting a client certificate")
    p.add_argument("--auth", action="store_true",
                   help="etcd auth on: before the workload the harness adds user root, a user "
                        "'chaos' whose one role has READWRITE on the workload's key prefix, "
                        "and enables auth; every workload client authenticates as chaos (and "
                        "again when a token goes stale), the harness's own calls as root; "
                        "members run with --bcrypt-cost 4")
    p.add_argument("--auth-token-ttl", type=_positive(int), default=None, metavar="S",
                   help="with --auth: the members' --auth-token-ttl (default: the server's, "
                        "300): a short TTL makes tokens go stale during the run")
    p.add_argument("--failpoints", default="", metavar="NAMES",
                   help="TEST ONLY: server failpoints to enable (e.g. kv-stale-read)")
    p.add_argument("-v", "--verbose", action="store_true", help="log the harness's steps")
    return p


def _interrupt(signum: int, frame: object) -> None:
    del signum, frame
    raise KeyboardInterrupt


def run_config(ns: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of parsed ``run`` flags."""
    flags = RunConfig.server_flags
    if ns.snapshot_count is not None:
        flags += ("--snapshot-count", str(ns.snapshot_count),
                  "--snapshot-catchup-entries", str(max(1, ns.snapshot_count // 5)))
    return RunConfig(out=ns.out, nodes=ns.nodes, workload=ns.workload, nemesis=ns.nemesis,
                     time_limit_s=ns.time_limit, rate=ns.rate, concurrency=ns.concurrency,
                     seed=ns.seed, backend=ns.backend, op_timeout_s=ns.op_timeout,
                     keys=ns.keys, client=ns.client, server_flags=flags, tls=ns.tls,
                     auth=ns.auth, auth_token_ttl_s=ns.auth_token_ttl,
                     failpoints=tuple(f for f in ns.failpoints.split(",") if f))


def run_main(argv: Sequence[str]) -> int:
    """``raftkv-chaos run``."""
    parser = build_parser()
    try:
        ns = parser.parse_args(list(argv))
        if ns.auth_token_ttl is not None and not ns.auth:
            parser.error("--auth-token-ttl needs --auth")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    cfg = run_config(ns)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # clean up before the loop runs, too
    try:
        outcome = run(cfg)
    except RunError as exc:
        sys.stderr.write(f"{PROG}: run could not be done: {exc}\n")
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.stderr.write(f"{PROG}: interrupted; cleaned up\n")
        return 2
    except Exception as exc:  # one line, traceback kept in the out dir
        ns.out.mkdir(parents=True, exist_ok=True)
        (ns.out / "harness-error.txt").write_text(traceback.format_exc())
        sys.stderr.write(f"{PROG}: run could not be done: {type(exc).__name__}: {exc} "
                         f"(traceback in {ns.out / 'harness-error.txt'})\n")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    for check in outcome.checks:
        verdict = "finding" if check.finding else {True: "ok", False: "VIOLATION",
                                                   None: "unknown"}[check.valid]
        lines = [ln for ln in check.text.splitlines() if not ln.startswith("finding")]
        print(f"{check.name}: {verdict} — {lines[0] if lines else ''}")
    ops = outcome.results["ops"]
    print(f"{'PASS' if outcome.exit_code == 0 else 'FAIL'}: {cfg.workload}"
          f"{' (tls)' if cfg.tls else ''}{' (auth)' if cfg.auth else ''}, ops {ops}, "
          f"faults {outcome.results['faults']}; report: {cfg.out / 'report.html'}")
    return outcome.exit_code


def cleanup_main(argv: Sequence[str]) -> int:
    """``raftkv-chaos cleanup``."""
    p = _Parser(prog=f"{PROG} cleanup",
                description="Remove every namespace, bridge, nftables rule and member process "
                            "left by harness runs that are no longer running.")
    p.add_argument("--force", action="store_true",
                   help="also clean up runs whose harness process is still alive")
    try:
        ns = p.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    done, live = cleanup(force=ns.force)
    for line in done:
        print(line)
    for run_id in live:
        print(f"skipped run {run_id}: its harness is still running (use --force)")
    if not done and not live:
        print("nothing to clean up")
    return 0
