"""Storage micro-benchmarks (not collected by pytest): ``python -m tests.storage.bench_storage``."""

from __future__ import annotations

import statistics
import tempfile
import time

from raftkv.raft.types import Entry, HardState
from raftkv.state.backend import WriteBatch
from raftkv.storage import DurableLogStorage, Engine, LevelDBBackend


def main() -> None:
    with tempfile.TemporaryDirectory() as d, Engine.open(d) as engine:
        log = DurableLogStorage(engine)
        lat = []
        for i in range(1, 501):
            t = time.perf_counter()
            log.save(HardState(1, 1, i - 1), [Entry(term=1, index=i, data=b"x" * 100)])
            lat.append(time.perf_counter() - t)
        lat.sort()
        print(f"save(1 entry of 100 B + hard state, fsync): median "
              f"{statistics.median(lat) * 1e3:.3f} ms, p99 {lat[int(len(lat) * .99)] * 1e3:.3f} ms")
        n, batches = 1000, 50
        t = time.perf_counter()
        for _ in range(batches):
            base = log.last_index() + 1
            log.save(HardState(1, 1, base - 1),
                     [Entry(term=1, index=base + i, data=b"y" * 100) for i in range(n)])
        dt = time.perf_counter() - t
        print(f"save(1000 entries of 100 B, fsync): {dt / batches * 1e3:.2f} ms per batch, "
              f"{n * batches / dt:,.0f} entries/s")
        last = log.last_index()
        t = time.perf_counter()
        got = sum(len(log.entries(lo, min(lo + 1000, last + 1))) for lo in range(1, last, 1000))
        dt = time.perf_counter() - t
        print(f"entries() through the tail cache/disk mix: {got / dt:,.0f} entries/s")
        cold = DurableLogStorage(engine, cache_entries=1)
        t = time.perf_counter()
        got = sum(len(cold.entries(lo, min(lo + 1000, last + 1))) for lo in range(1, last, 1000))
        dt = time.perf_counter() - t
        print(f"entries() from LevelDB (no cache): {got / dt:,.0f} entries/s")
        t = time.perf_counter()
        DurableLogStorage(engine)
        print(f"reopen a {last}-entry log: {(time.perf_counter() - t) * 1e3:.2f} ms")
        t = time.perf_counter()
        log.compact(last - 100)
        print(f"compact {last - 100} entries: {(time.perf_counter() - t) * 1e3:.1f} ms")
        backend = LevelDBBackend(engine)
        t = time.perf_counter()
        for i in range(500):
            backend.write(WriteBatch([(b"key%d" % i, b"v" * 100), (b"applied", b"%d" % i)]))
        per_write = (time.perf_counter() - t) / 500
        print(f"LevelDBBackend.write (2 ops, fsync): {per_write * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
