"""What authentication costs: raftkv and etcd, each with auth off and on, in one run.

Starts 3-member clusters side by side on loopback — etcd, etcd with auth, raftkv, raftkv
with auth, and with ``--baseline REV`` also raftkv at git revision REV (auth off: the cost
of the auth code on the hot path while auth is off) — and runs put@64 and get@64
(linearizable) against each in turn for ``--rounds`` rounds with the same client
(``raftkv bench``; with auth, ``--user bench:...``, a user whose one role grants READWRITE on
the ``bench/`` prefix, as the issue asks). Auth is set up with etcdctl on both: user root,
``auth enable``, the bench user and its role. Not a test: nothing is asserted.

    .venv/bin/python benchmarks/compare_auth.py --rounds 3 --baseline HEAD~1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clusters import Etcd, Raftkv
from raftkv.bench import BenchConfig, BenchResult, run
from tests.integration.procs import etcdctl

CASES = (("put", 64), ("get", 64))
BENCH_USER = "bench:bench-pw"


def enable_auth(endpoints: list[str]) -> None:
    """etcdctl's own steps: root, auth enable, a user with READWRITE on bench/."""
    ep = ",".join(endpoints)
    root = ["--user=root:root-pw"]
    steps = [["user", "add", "root:root-pw"], ["auth", "enable"],
             [*root, "user", "add", BENCH_USER], [*root, "role", "add", "bench"],
             [*root, "role", "grant-permission", "bench", "readwrite", "bench/", "--prefix"],
             [*root, "user", "grant-role", "bench", "bench"]]
    for args in steps:
        out = etcdctl(ep, *args)
        if out.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {out.stderr.strip()}")


def bench(system: Etcd | Raftkv, workload: str, concurrency: int, user: str | None,
          a: argparse.Namespace) -> BenchResult:
    cfg = BenchConfig(endpoints=tuple(system.endpoints), workload=workload,
                      concurrency=concurrency, procs=a.procs, keys=a.keys,
                      value_size=a.value_size, duration_s=a.duration, warmup_s=a.warmup,
                      prefix=f"bench/{workload}/".encode(), preload=True, user=user)
    return run(cfg)


def baseline(root: Path, rev: str) -> Raftkv:
    """raftkv at ``rev`` (a git worktree), run with this venv's Python and packages."""
    tree = root / "baseline-src"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(tree))
    return Raftkv(root, name=f"raftkv@{rev}", env=env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--baseline", metavar="REV", help="also raftkv at this git revision")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/compare_auth.json"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="raftkv-auth-bench-") as tmp:
        root = Path(tmp)
        systems: list[tuple[Etcd | Raftkv, str | None]] = [
            (Etcd(root), None), (Etcd(root, name="etcd-auth"), BENCH_USER),
            (Raftkv(root), None), (Raftkv(root, name="raftkv-auth",
                                          flags=("--bcrypt-cost", "10")), BENCH_USER)]
        if a.baseline:
            systems.append((baseline(root, a.baseline), None))
        runs: dict[str, dict[str, list[BenchResult]]] = {
            f"{w}@{c}": {s.name: [] for s, _ in systems} for w, c in CASES}
        try:
            for s, user in systems:
                s.start()
                if user is not None:
                    enable_auth(s.endpoints)
            for rnd in range(a.rounds):
                for w, c in CASES:
                    for s, user in systems:
                        r = bench(s, w, c, user, a)
                        runs[f"{w}@{c}"][s.name].append(r)
                        print(f"round {rnd + 1} {w}@{c:<4} {s.name:<16}{r.ops_per_s:>8,.0f}/s "
                              f"p50 {r.p50_ms:6.1f} p99 {r.p99_ms:6.1f} ms errors "
                              f"{r.error_count}", flush=True)
        finally:
            for s, _ in systems:
                s.stop()
            if a.baseline:
                subprocess.run(["git", "worktree", "remove", "--force",
                                str(root / "baseline-src")], check=False, capture_output=True)
    summary = {label: {s: statistics.median(r.ops_per_s for r in rs) for s, rs in by.items()}
               for label, by in runs.items()}
    for label, med in summary.items():
        print(f"\n{label}: " + ", ".join(f"{s} {v:,.0f}/s" for s, v in med.items()))
        print(f"  ratio off {med['raftkv'] / med['etcd']:.2f}, on "
              f"{med['raftkv-auth'] / med['etcd-auth']:.2f}; auth costs etcd "
              f"{1 - med['etcd-auth'] / med['etcd']:.0%}, raftkv "
              f"{1 - med['raftkv-auth'] / med['raftkv']:.0%}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"taken": time.strftime("%Y-%m-%d %H:%M"),
                                 "args": {k: str(v) for k, v in vars(a).items()},
                                 "medians": summary,
                                 "runs": {label: {s: [r.to_json() for r in rs]
                                                  for s, rs in by.items()}
                                          for label, by in runs.items()}}, indent=1))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
