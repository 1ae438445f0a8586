"""The performance paths of DurableLogStorage: the incrementally sized tail cache agrees with
the log under appends that overwrite suffixes and under compaction, within its limits; and
an unsynced save (a Ready that only moves the commit index) is still written."""

from __future__ import annotations

import random
from pathlib import Path

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import Entry, HardState
from raftkv.storage import DurableLogStorage, Engine


def test_tail_cache_tracks_the_log(tmp_path: Path) -> None:
    rng = random.Random(7)
    engine = Engine.open(tmp_path / "db")
    d = DurableLogStorage(engine, cache_entries=64, cache_bytes=2_000)
    m = MemoryStorage()
    term = 1
    for step in range(400):
        last = m.last_index()
        start = max(m.first_index(), last + 1 - rng.randrange(0, 8))  # may overwrite
        if step % 50 == 49:
            term += 1
        batch = [Entry(term=term, index=start + i, data=rng.randbytes(rng.randrange(0, 120)))
                 for i in range(rng.randrange(1, 20))]
        d.append(batch)
        m.append(batch)
        if step % 97 == 96:
            d.compact(m.last_index() - 10)
            m.compact(m.last_index() - 10)
        tail = d._tail
        assert d._tail_bytes == sum(e.size() for e in tail)
        assert len(tail) <= 64
        assert d._tail_bytes <= 2_000 or len(tail) == 1
        assert tail == m.entries(m.last_index() - len(tail) + 1, m.last_index() + 1)
    lo = m.first_index()
    assert d.entries(lo, m.last_index() + 1) == m.entries(lo, m.last_index() + 1)
    engine.close()


def test_unsynced_save_is_written(tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "db")
    d = DurableLogStorage(engine)
    d.save(HardState(term=2, vote=1, commit=0), [Entry(term=2, index=1, data=b"x")])
    d.save(HardState(term=2, vote=1, commit=1), sync=False)
    assert d.hard_state.commit == 1
    engine.close()
    engine = Engine.open(tmp_path / "db")
    assert DurableLogStorage(engine).initial_state()[0] == HardState(term=2, vote=1, commit=1)
    engine.close()
