"""Child process of ``test_kill``: writes batches in a loop and acknowledges each one.

Usage: ``python -m tests.storage.kill_child DIR SEED``. Batch ``k`` (k = 1, 2, ...) is one
``DurableLogStorage.save`` whose shape depends only on ``(SEED, k)`` (see :func:`plan`): it
may overwrite a suffix of the log, appends entries tagged ``k``, and sets the hard state's
term to ``k``; then one ``LevelDBBackend.write`` sets every state key to ``k``. The child
prints ``log k`` / ``state k`` only after the write returned, and resumes after the last
durable batch when restarted on the same directory.
"""

from __future__ import annotations

import random
import sys

from raftkv.raft.types import Entry, HardState
from raftkv.state.backend import WriteBatch
from raftkv.storage import Store

STATE_KEYS = [b"k%d" % i for i in range(8)]


def plan(seed: int, k: int, last: int, first: int) -> tuple[int, int, int]:
    """``(start, count, compact_to)`` of batch ``k`` on a log ``first .. last``."""
    rng = random.Random(seed * 1_000_003 + k)
    back = rng.choice([0, 0, 0, 1, 3])
    start = max(first, last + 1 - back)
    count = rng.randint(1, 64)
    compact_to = max(0, start + count - 1 - 40) if k % 7 == 0 else 0
    return start, count, compact_to


def entries(k: int, start: int, count: int) -> list[Entry]:
    return [Entry(term=k, index=start + i, data=b"batch %d entry %d" % (k, i) * 3)
            for i in range(count)]


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    with Store.open(path) as store:
        log, backend = store.log, store.backend
        k = log.initial_state()[0].term
        while True:
            k += 1
            start, count, compact_to = plan(seed, k, log.last_index(), log.first_index())
            log.save(HardState(term=k, vote=1, commit=0), entries(k, start, count))
            print(f"log {k}", flush=True)
            wb = WriteBatch()
            for key in STATE_KEYS:
                wb.put(key, b"%d" % k)
            backend.write(wb)
            print(f"state {k}", flush=True)
            if compact_to > log.first_index():
                log.compact(compact_to)


if __name__ == "__main__":
    main()
