"""What TLS costs: raftkv and etcd, each with and without mutual TLS, in one run.

Makes one set of certificates (``raftkv certs init``: a CA, a certificate per member, a
client certificate), starts four 3-member clusters on loopback — etcd, etcd with mTLS,
raftkv, raftkv with mTLS; both TLS clusters use the same certificate files and flags on both
listeners — and runs each workload against each **alternately** for ``--rounds`` rounds
with the same client (``raftkv bench``, TLS on for the TLS clusters). Prints the median of
each figure, the raftkv/etcd ratio without TLS and with it, and what TLS costs each system.
Not a test: nothing is asserted.

    .venv/bin/python benchmarks/compare_tls.py                    # put@64 and get@64, 3 rounds
    .venv/bin/python benchmarks/compare_tls.py --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clusters import Etcd, Raftkv
from raftkv import certs
from raftkv.bench import BenchConfig, BenchResult, run

CASES = (("put", 64), ("get", 64))
SYSTEMS = ("etcd", "etcd-tls", "raftkv", "raftkv-tls")


def bench(system: Etcd | Raftkv, workload: str, concurrency: int,
          a: argparse.Namespace) -> BenchResult:
    d = system.tls_dir
    tls = {} if d is None else {"tls": True, "cacert": str(d / "ca.pem"),
                                "cert": str(d / "client.pem"), "key": str(d / "client-key.pem")}
    cfg = BenchConfig(endpoints=tuple(system.endpoints), workload=workload,
                      concurrency=concurrency, procs=a.procs, keys=a.keys,
                      value_size=a.value_size, duration_s=a.duration, warmup_s=a.warmup,
                      prefix=f"bench/{workload}/".encode(), preload=True, **tls)  # type: ignore[arg-type]
    return run(cfg)


def summary(runs: dict[str, dict[str, list[BenchResult]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label, by in runs.items():
        med = {s: statistics.median(r.ops_per_s for r in rs) for s, rs in by.items()}
        p99 = {s: statistics.median(r.p99_ms for r in rs) for s, rs in by.items()}
        out[label] = {**{f"{s} ops/s": v for s, v in med.items()},
                      **{f"{s} p99 ms": v for s, v in p99.items()},
                      "ratio plain": med["raftkv"] / med["etcd"],
                      "ratio tls": med["raftkv-tls"] / med["etcd-tls"],
                      "etcd tls/plain": med["etcd-tls"] / med["etcd"],
                      "raftkv tls/plain": med["raftkv-tls"] / med["raftkv"]}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/compare_tls.json"))
    a = p.parse_args()
    runs: dict[str, dict[str, list[BenchResult]]] = {
        f"{w}@{c}": {s: [] for s in SYSTEMS} for w, c in CASES}
    with tempfile.TemporaryDirectory(prefix="raftkv-tls-bench-") as tmp:
        root = Path(tmp)
        certs.init_cluster(root / "certs", ["n1", "n2", "n3"])
        systems: list[Etcd | Raftkv] = [Etcd(root), Etcd(root, tls_dir=root / "certs"),
                                        Raftkv(root), Raftkv(root, tls_dir=root / "certs")]
        try:
            for s in systems:
                s.start()
            for rnd in range(a.rounds):
                for w, c in CASES:
                    for s in systems:
                        r = bench(s, w, c, a)
                        runs[f"{w}@{c}"][s.name].append(r)
                        print(f"round {rnd + 1} {w}@{c:<4} {s.name:<11}{r.ops_per_s:>8,.0f}/s "
                              f"p50 {r.p50_ms:6.1f} p99 {r.p99_ms:6.1f} ms errors "
                              f"{r.error_count}", flush=True)
        finally:
            for s in systems:
                s.stop()
    table = summary(runs)
    for label, row in table.items():
        print(f"\n{label}")
        for key, value in row.items():
            print(f"  {key:<18} {value:>10,.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"taken": time.strftime("%Y-%m-%d %H:%M"),
                                 "args": {k: str(v) for k, v in vars(a).items()},
                                 "summary": table,
                                 "runs": {label: {s: [r.to_json() for r in rs]
                                                  for s, rs in by.items()}
                                          for label, by in runs.items()}}, indent=1))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
