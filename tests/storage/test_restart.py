"""DurableLogStorage: everything written is there after close and reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftkv.raft.errors import Compacted
from raftkv.raft.storage import MemoryStorage, limit_size
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import CorruptionError, DurableLogStorage, Engine, keys
from tests.storage.helpers import dump, ents

CS = ConfState(voters=frozenset({1, 2, 3}))


def reopen(path: Path, old: Engine | None = None, **kw: int) -> tuple[Engine, DurableLogStorage]:
    if old is not None:
        old.close()
    engine = Engine.open(path)
    return engine, DurableLogStorage(engine, **kw)


def both(path: Path) -> tuple[MemoryStorage, Engine, DurableLogStorage]:
    engine, d = reopen(path)
    return MemoryStorage(), engine, d


def test_reopen_after_appends_hard_state_and_truncation(tmp_path: Path) -> None:
    m, engine, d = both(tmp_path)
    for s in (m, d):
        s.append(ents(*[(i, 1) for i in range(1, 51)]))
        s.append(ents(*[(i, 2) for i in range(40, 46)]))  # truncates 46..50
        s.set_hard_state(HardState(term=2, vote=3, commit=44))
    engine, d = reopen(tmp_path, engine)
    assert dump(d) == dump(m)
    assert d.last_index() == 45
    engine.close()


def test_reopen_after_compaction_and_snapshot(tmp_path: Path) -> None:
    m, engine, d = both(tmp_path)
    for s in (m, d):
        s.append(ents(*[(i, 1 + i // 10) for i in range(1, 101)]))
        s.create_snapshot(80, CS, b"state at 80")
        s.compact(70)
    engine, d = reopen(tmp_path, engine)
    assert dump(d) == dump(m)
    assert (d.first_index(), d.term(70)) == (71, 8)
    with pytest.raises(Compacted):
        d.entries(70, 72)
    engine.close()


def test_reopen_after_apply_snapshot_with_entries_in_same_save(tmp_path: Path) -> None:
    m, engine, d = both(tmp_path)
    for s in (m, d):
        s.append(ents(*[(i, 1) for i in range(1, 30)]))
    snap = Snapshot(meta=SnapshotMeta(index=20, term=3, conf_state=CS), data=b"S" * 10)
    hs = HardState(term=3, vote=0, commit=21)
    new = ents((21, 3), (22, 3))
    m.apply_snapshot(snap)
    m.append(new)
    m.set_hard_state(hs)
    d.save(hs, new, snap)
    assert dump(d) == dump(m)
    engine, d = reopen(tmp_path, engine)
    assert dump(d) == dump(m)
    assert next(engine.keys(keys.LOG_START, keys.log_key(21)), None) is None  # old log gone
    engine.close()


def test_large_snapshot_is_chunked_and_shrinks(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    d.append(ents(*[(i, 1) for i in range(1, 11)]))
    big = bytes(range(256)) * (10 * keys.CHUNK_BYTES // 256 // 4)  # 2.5 chunks
    d.create_snapshot(5, CS, big)
    engine, d = reopen(tmp_path, engine)
    assert d.snapshot().data == big
    assert len(list(engine.keys(keys.SNAP_DATA_START, keys.SNAP_DATA_END))) == 3
    d.create_snapshot(8, CS, b"small")
    engine, d = reopen(tmp_path, engine)
    assert d.snapshot() == Snapshot(SnapshotMeta(8, 1, CS), b"small")
    assert len(list(engine.keys(keys.SNAP_DATA_START, keys.SNAP_DATA_END))) == 1
    engine.close()


def test_conf_state_record_newer_than_snapshot(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    d.append(ents(*[(i, 1) for i in range(1, 11)]))
    d.create_snapshot(5, CS, b"")
    newer = ConfState(voters=frozenset({1, 2, 3, 4}))
    d.set_conf_state(7, newer)
    engine, d = reopen(tmp_path, engine)
    assert d.initial_state()[1] == newer
    d.create_snapshot(9, ConfState(voters=frozenset({1})), b"")  # newer than the record
    assert d.initial_state()[1] == ConfState(voters=frozenset({1}))
    engine.close()


def test_reopen_reads_from_disk_with_tiny_cache(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    log = [Entry(term=1 + i // 100, index=i, data=bytes([i % 256]) * (i % 50))
           for i in range(1, 1001)]
    d.append(log)
    engine, d = reopen(tmp_path, engine, cache_entries=1)
    assert d.entries(1, 1001) == log
    assert [d.term(i) for i in range(1, 1001)] == [e.term for e in log]
    assert d.entries(500, 1001, max_size=100) == limit_size(log[499:], 100)
    assert len(d.entries(500, 1001, max_size=100)) == 5
    engine.close()


def test_open_removes_keys_left_below_the_offset(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    d.append(ents(*[(i, 1) for i in range(1, 11)]))
    d.compact(5)
    batch = engine.batch()  # as if a crash interrupted the chunked deletes
    for i in (2, 3, 4):
        batch.put(keys.log_key(i), b"stale")
    batch.commit()
    engine, d = reopen(tmp_path, engine)
    assert list(engine.keys(keys.LOG_START, keys.log_key(6))) == []
    assert d.entries(6, 11) == ents(*[(i, 1) for i in range(6, 11)])
    engine.close()


def test_deferred_cleanup_deletes_compacted_keys_later(tmp_path: Path) -> None:
    m, engine, d = both(tmp_path)
    for s in (m, d):
        s.append(ents(*[(i, 1) for i in range(1, 101)]))
    m.compact(60)
    d.compact(60, defer_cleanup=True)
    assert dump(d) == dump(m)  # the log reads as compacted at once
    with pytest.raises(Compacted):
        d.entries(60, 62)
    left = list(engine.keys(keys.LOG_START, keys.log_key(61)))
    assert len(left) == 60  # entries 1..60 still on disk
    d.append(ents((101, 1)))  # the writer goes on meanwhile
    d.delete_compacted()
    assert list(engine.keys(keys.LOG_START, keys.log_key(61))) == []
    assert d.entries(61, 102) == ents(*[(i, 1) for i in range(61, 102)])
    engine, d = reopen(tmp_path, engine)
    assert (d.first_index(), d.last_index()) == (61, 101)
    engine.close()


def test_gap_in_the_log_is_detected(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    d.append(ents(*[(i, 1) for i in range(1, 11)]))
    batch = engine.batch()
    batch.delete(keys.log_key(5))
    batch.commit()
    engine, d = reopen(tmp_path, engine, cache_entries=1)
    with pytest.raises(CorruptionError):
        d.entries(1, 11)
    with pytest.raises(CorruptionError):
        d.term(5)
    batch = engine.batch()
    batch.delete(keys.log_key(1))
    batch.commit()
    engine.close()
    with Engine.open(tmp_path) as engine2, pytest.raises(CorruptionError):
        DurableLogStorage(engine2)


def test_corrupt_record_is_detected(tmp_path: Path) -> None:
    engine, d = reopen(tmp_path)
    d.set_hard_state(HardState(term=1))
    batch = engine.batch()
    batch.put(keys.HARD_STATE, b"\x09garbage")
    batch.commit()
    engine.close()
    with Engine.open(tmp_path) as engine2, pytest.raises(CorruptionError, match="version"):
        DurableLogStorage(engine2)
