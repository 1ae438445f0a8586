"""Baseline figures for the durable cluster (issue 3): Put throughput and latency at several
requests in flight, and the restart time of a member holding many keys.

Starts its own 3-member cluster of real processes on loopback (data under a temporary
directory, removed afterwards), drives it with grpc.aio from this process, and prints a
table. Not a test: nothing is asserted, figures are reported.

    .venv/bin/python benchmarks/durable_baseline.py --duration 10 --inflight 1,16,64
    .venv/bin/python benchmarks/durable_baseline.py --restart-keys 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import ProcCluster


async def put_load(endpoints: list[str], inflight: int, duration: float, value_size: int,
                   keys: int) -> tuple[int, list[float], int]:
    channels = [grpc.aio.insecure_channel(e) for e in endpoints]
    stubs = [rpc_pb2_grpc.KVStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
    lat: list[float] = []
    errors = 0
    value = os.urandom(value_size // 2).hex().encode()[:value_size]
    stop_at = time.perf_counter() + duration

    async def worker(n: int) -> None:
        nonlocal errors
        i = 0
        stub = stubs[n % len(stubs)]
        while time.perf_counter() < stop_at:
            key = b"bench/%d" % ((n * 7919 + i) % keys)
            t0 = time.perf_counter()
            try:
                await stub.Put(rpc_pb2.PutRequest(key=key, value=value), timeout=10)
                lat.append(time.perf_counter() - t0)
            except grpc.aio.AioRpcError:
                errors += 1
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(inflight)))
    elapsed = time.perf_counter() - t0
    for ch in channels:
        await ch.close()
    return int(len(lat) / elapsed), lat, errors


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else float("nan")


def bench_puts(c: ProcCluster, levels: list[int], duration: float, value_size: int) -> None:
    endpoints = [m.endpoint for m in c.members]
    print(f"durable Put, 3 members, {value_size}-byte values over 10,000 keys, "
          f"{duration:.0f} s per level, clients spread over all members")
    print(f"{'in flight':>9} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    for n in levels:
        ops, lat, errors = asyncio.run(put_load(endpoints, n, duration, value_size, 10_000))
        print(f"{n:>9} {ops:>8} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} "
              f"{max(lat) * 1000 if lat else 0:>8.1f} {errors:>6}", flush=True)


def bench_restart(c: ProcCluster, keys: int) -> None:
    endpoints = [m.endpoint for m in c.members]
    print(f"loading {keys} keys of 256 bytes ...", flush=True)

    async def load() -> None:
        channels = [grpc.aio.insecure_channel(e) for e in endpoints]
        stubs = [rpc_pb2_grpc.KVStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        it = iter(range(keys))

        async def worker(n: int) -> None:
            for i in it:
                await stubs[n % 3].Put(rpc_pb2.PutRequest(key=b"r/%08d" % i, value=b"x" * 256),
                                       timeout=30)

        await asyncio.gather(*(worker(n) for n in range(64)))
        for ch in channels:
            await ch.close()

    t0 = time.perf_counter()
    asyncio.run(load())
    print(f"loaded in {time.perf_counter() - t0:.1f} s")
    lead = c.leader()
    member = next(m for m in c.members if m is not lead)
    index = c.status(lead).raftIndex  # type: ignore[union-attr]
    c.wait_applied(member, index)
    c.kill(member, sig=15)
    t0 = time.perf_counter()
    c.start(member)
    while c.status(member) is None:
        time.sleep(0.01)
    answering = time.perf_counter() - t0
    c.wait_applied(member, index)
    caught_up = time.perf_counter() - t0
    st = c.status(member)
    size = st.dbSize if st is not None else 0
    print(f"restart of a member holding {keys} keys ({size / 2**20:.0f} MiB on disk): "
          f"answering after {answering * 1000:.0f} ms, caught up after {caught_up * 1000:.0f} ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inflight", default="1,16,64", help="comma-separated levels")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--restart-keys", type=int, default=0,
                   help="instead: load this many keys and time a member restart")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="raftkv-bench-") as tmp:
        c = ProcCluster(Path(tmp), 3, flags=("--heartbeat-interval", "100",
                                             "--election-timeout", "1000"))
        c.start_all()
        try:
            c.leader()
            if a.restart_keys:
                bench_restart(c, a.restart_keys)
            else:
                bench_puts(c, [int(x) for x in a.inflight.split(",")], a.duration,
                           a.value_size)
        finally:
            c.stop_all()

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
