"""raftkv against etcd, side by side in one run, with the same client (``raftkv bench``).

Starts a 3-member etcd (Debian's etcd 3.4) and a 3-member raftkv on loopback, each with
fresh data directories under /tmp and etcd's default timing, then runs every workload
against each **alternately** (etcd, raftkv, etcd, raftkv, ... for ``--rounds`` rounds), so
slow drifts of a shared, noisy machine hit both alike. Prints the median of each figure per
system and the raftkv/etcd ratios, writes every run's figures as JSON and a PNG of Put
throughput and p99 latency against requests in flight. Not a test: nothing is asserted.

    .venv/bin/python benchmarks/compare_etcd.py                      # everything, 3 rounds
    .venv/bin/python benchmarks/compare_etcd.py --only put@64 --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clusters import Etcd, Raftkv
from raftkv.bench import BenchConfig, BenchResult, run


@dataclass(frozen=True)
class Case:
    workload: str
    concurrency: int
    serializable: bool = False

    @property
    def label(self) -> str:
        name = "get-serializable" if self.serializable else self.workload
        return f"{name}@{self.concurrency}"


CASES = [Case("put", 1), Case("put", 16), Case("put", 64), Case("put", 256),
         Case("get", 64), Case("get", 64, serializable=True), Case("txn", 64),
         Case("lock", 16), Case("watch", 16)]
FIGURES = ("ops_per_s", "p50_ms", "p99_ms", "client_cpu")


def bench(system: Etcd | Raftkv, case: Case, a: argparse.Namespace) -> BenchResult:
    cfg = BenchConfig(endpoints=tuple(system.endpoints), workload=case.workload,
                      serializable=case.serializable, concurrency=case.concurrency,
                      procs=min(a.procs, case.concurrency), keys=a.keys,
                      value_size=a.value_size, duration_s=a.duration, warmup_s=a.warmup,
                      watchers=16, prefix=f"bench/{case.workload}/".encode(),
                      preload=True)
    return run(cfg)


def medians(runs: list[BenchResult]) -> dict[str, float]:
    out = {f: statistics.median(float(getattr(r, f)) for r in runs) for f in FIGURES}
    out["errors"] = float(sum(r.error_count for r in runs))
    return out


def print_table(cases: list[Case], med: dict[str, dict[str, dict[str, float]]]) -> None:
    hdr = (f"{'workload@in flight':<24}{'system':>8}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
           f"{'cli CPU':>8}{'errors':>7}")
    print(hdr)
    print("-" * len(hdr))
    for c in cases:
        for sysname in ("etcd", "raftkv"):
            m = med[c.label][sysname]
            print(f"{c.label:<24}{sysname:>8}{m['ops_per_s']:>9,.0f}{m['p50_ms']:>9.1f}"
                  f"{m['p99_ms']:>9.1f}{m['client_cpu']:>8.2f}{m['errors']:>7.0f}")
        e, r = med[c.label]["etcd"], med[c.label]["raftkv"]
        print(f"{'':<24}{'ratio':>8}{r['ops_per_s'] / e['ops_per_s']:>9.2f}"
              f"{r['p50_ms'] / e['p50_ms']:>9.2f}{r['p99_ms'] / e['p99_ms']:>9.2f}")


def plot(cases: list[Case], med: dict[str, dict[str, dict[str, float]]], path: Path,
         title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    puts = sorted((c for c in cases if c.workload == "put"), key=lambda c: c.concurrency)
    if len(puts) < 2:
        return
    xs = [c.concurrency for c in puts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for sysname, style in (("etcd", "o-"), ("raftkv", "s-")):
        ax1.plot(xs, [med[c.label][sysname]["ops_per_s"] for c in puts], style, label=sysname)
        ax2.plot(xs, [med[c.label][sysname]["p99_ms"] for c in puts], style, label=sysname)
    for ax, ylabel in ((ax1, "durable Puts/s (median)"), (ax2, "p99 latency, ms (median)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("requests in flight")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--procs", type=int, default=2, help="client processes per run")
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--only", default="", help="comma-separated case labels, e.g. put@64")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="directory for the JSON and the PNG")
    p.add_argument("--tag", default="compare", help="file name stem of the outputs")
    a = p.parse_args()
    if a.rounds < 1:
        p.error(f"--rounds {a.rounds}: must be at least 1")
    return a


def main() -> int:
    a = parse_args()
    wanted = set(a.only.split(",")) - {""}
    cases = [c for c in CASES if not wanted or c.label in wanted]
    if not cases:
        print(f"--only {a.only!r}: no such case; choose from "
              f"{', '.join(c.label for c in CASES)}", file=sys.stderr)
        return 2
    runs: dict[str, dict[str, list[BenchResult]]] = {c.label: {"etcd": [], "raftkv": []}
                                                      for c in cases}
    with tempfile.TemporaryDirectory(prefix="raftkv-compare-") as tmp:
        systems: list[Etcd | Raftkv] = [Etcd(Path(tmp)), Raftkv(Path(tmp))]
        try:
            for s in systems:
                s.start()
            for rnd in range(a.rounds):
                for c in cases:
                    for s in systems:  # A B, A B, ...: both see the same machine
                        r = bench(s, c, a)
                        runs[c.label][s.name].append(r)
                        print(f"round {rnd + 1} {c.label:<22} {s.name:<7}"
                              f"{r.ops_per_s:>8,.0f}/s p50 {r.p50_ms:6.1f} p99 "
                              f"{r.p99_ms:6.1f} ms  errors {r.error_count}  "
                              f"client CPU {r.client_cpu:.2f}", flush=True)
        finally:
            for s in systems:
                s.stop()
    med = {label: {s: medians(rs) for s, rs in by.items()} for label, by in runs.items()}
    print()
    print_table(cases, med)
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    doc = {"taken": stamp, "args": {k: str(v) for k, v in vars(a).items()},
           "medians": med,
           "runs": {label: {s: [r.to_json() for r in rs] for s, rs in by.items()}
                    for label, by in runs.items()}}
    (a.out / f"{a.tag}.json").write_text(json.dumps(doc, indent=1))
    plot(cases, med, a.out / f"{a.tag}.png",
         f"3 members on loopback, {a.value_size}-byte values over {a.keys} keys, "
         f"median of {a.rounds} alternating rounds ({stamp})")
    print(f"\nwrote {a.out / (a.tag + '.json')} and {a.out / (a.tag + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
