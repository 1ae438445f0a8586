"""Command line of the simulator: ``python -m chaos.sim``."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Iterator

from chaos.sim import SimConfig, Simulator, Violation


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="raftkv-chaos sim",
        description="Run the seeded Raft simulator over many seeds with every fault enabled "
                    "and check Raft's safety and liveness properties after every step.",
        epilog="example: python -m chaos.sim --seeds 1000 --nodes 5 --ticks 2000 --jobs 2\n"
               "replay one seed with its trace: python -m chaos.sim --seed 42 --trace",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=100, help="how many seeds to run (default 100)")
    p.add_argument("--start", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--seed", type=int, help="run only this seed")
    p.add_argument("--nodes", type=int, default=5, help="initial cluster size (default 5)")
    p.add_argument("--ticks", type=int, default=2000, help="ticks per seed (default 2000)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--trace", action="store_true", help="print the trace of a failing seed")
    p.add_argument("--no-swarm", action="store_true",
                   help="every fault kind at its base rate in every seed (default: each seed "
                        "scales each kind by 0..4, 'swarm testing')")
    return p


def _run_one(args: tuple[int, int, int, bool],
             ) -> tuple[int, str | None, list[str], float]:
    seed, nodes, ticks, swarm = args
    t0 = time.process_time()
    try:
        Simulator(SimConfig(seed=seed, nodes=nodes, ticks=ticks, swarm=swarm)).run()
    except Violation as v:
        return seed, str(v), v.trace, time.process_time() - t0
    return seed, None, [], time.process_time() - t0


def _results(jobs: int, work: list[tuple[int, int, int, bool]],
             ) -> Iterator[tuple[int, str | None, list[str], float]]:
    if jobs <= 1:
        yield from map(_run_one, work)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap_unordered(_run_one, work, chunksize=4)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    for name in ("seeds", "nodes", "ticks", "jobs"):
        if getattr(a, name) < 1:
            print(f"error: --{name} must be at least 1 (got {getattr(a, name)})",
                  file=sys.stderr)
            return 2
    if a.nodes < 3:
        print(f"error: --nodes={a.nodes}: the simulator needs at least 3 nodes",
              file=sys.stderr)
        return 2
    seeds = [a.seed] if a.seed is not None else list(range(a.start, a.start + a.seeds))
    work = [(s, a.nodes, a.ticks, not a.no_swarm) for s in seeds]
    started = time.monotonic()
    failures: list[int] = []
    cpu = 0.0
    for seed, err, trace, spent in _results(a.jobs, work):
        cpu += spent
        if err is not None:
            failures.append(seed)
            print(f"VIOLATION {err}", flush=True)
            if a.trace or a.seed is not None:
                print("\n".join("    " + line for line in trace))
            print(f"    replay: python -m chaos.sim --seed {seed} --nodes {a.nodes} "
                  f"--ticks {a.ticks} --trace", flush=True)
    wall = time.monotonic() - started
    n = len(seeds)
    print(f"{n} seeds x {a.ticks} ticks on {a.nodes} nodes: {len(failures)} violation(s); "
          f"{n / wall * 60:.0f} seeds/min wall ({a.jobs} job(s)), "
          f"{n / cpu * 60 if cpu else 0:.0f} seeds/min per core")
    if failures:
        print("failing seeds: " + " ".join(map(str, sorted(failures))))
    return 1 if failures else 0
