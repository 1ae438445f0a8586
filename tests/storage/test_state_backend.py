"""LevelDBBackend against MemoryBackend, and the StateMachine over both."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.state import MemoryBackend, StateMachine
from raftkv.state.backend import WriteBatch
from raftkv.state.commands import Command, LeaseGrant, Put
from raftkv.storage import Engine, LevelDBBackend, keys
from tests.state import strategies as s
from tests.state.helpers import Node

KEYS = st.binary(max_size=3)
OPS = st.lists(st.tuples(KEYS, st.none() | st.binary(max_size=4)), max_size=6)


def test_backend_is_confined_to_its_namespace(engine: Engine) -> None:
    b = LevelDBBackend(engine)
    wb = WriteBatch()
    wb.put(b"", b"empty key")
    wb.put(b"\xff\xff", b"high")
    b.write(wb)
    raft = engine.batch()
    raft.put(keys.HARD_STATE, b"x")
    raft.commit()
    assert list(b.scan(b"", None)) == [(b"", b"empty key"), (b"\xff\xff", b"high")]
    assert b.get(b"\xff\xff") == b"high"
    assert len(b) == 2
    assert engine.get(keys.STATE.key(b"")) == b"empty key"


def test_scan_reflects_the_state_when_called(engine: Engine) -> None:
    b = LevelDBBackend(engine)
    wb = WriteBatch()
    for k in (b"a", b"b", b"c"):
        wb.put(k, b"1")
    b.write(wb)
    it = b.scan(b"a", None)
    wb = WriteBatch()
    wb.delete(b"b")
    wb.put(b"d", b"2")
    b.write(wb)
    assert [k for k, _ in it] == [b"a", b"b", b"c"]
    snap = b.snapshot_iter()
    b.write(WriteBatch([(b"e", b"3")]))
    assert [k for k, _ in snap] == [b"a", b"c", b"d"]


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(OPS, max_size=8),
       scans=st.lists(st.tuples(KEYS, st.none() | KEYS), max_size=6))
def test_agrees_with_memory_backend(batches: list[list[tuple[bytes, bytes | None]]],
                                    scans: list[tuple[bytes, bytes | None]]) -> None:
    d = tempfile.mkdtemp(prefix="raftkv-backend-")
    try:
        with Engine.open(d) as engine:
            lb, mb = LevelDBBackend(engine, sync=False), MemoryBackend()
            for ops in batches:
                lb.write(WriteBatch(list(ops)))
                mb.write(WriteBatch(list(ops)))
            for start, end in scans:
                assert list(lb.scan(start, end)) == list(mb.scan(start, end))
            for key, _ in (op for ops in batches for op in ops):
                assert lb.get(key) == mb.get(key)
            assert list(lb.snapshot_iter()) == list(mb.scan(b"", None))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_install_replaces_everything(engine: Engine) -> None:
    b = LevelDBBackend(engine)
    b.write(WriteBatch([(b"old", b"1"), (b"keep", b"1")]))
    assert b.install([(b"keep", b"2"), (b"new", b"3")]) == 2
    assert list(b.scan(b"", None)) == [(b"keep", b"2"), (b"new", b"3")]


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(s.commands, min_size=1, max_size=25))
def test_state_machine_over_both_backends(ops: list[Command]) -> None:
    """Same commands, same results, same snapshot; and the LevelDB one survives a reopen."""
    d = Path(tempfile.mkdtemp(prefix="raftkv-sm-"))
    try:
        mem = Node()
        with Engine.open(d) as engine:
            lvl = Node(LevelDBBackend(engine, sync=False))
            for op in ops:
                assert lvl.apply(op) == mem.apply(op)
            assert lvl.sm.snapshot() == mem.sm.snapshot()
        with Engine.open(d) as engine:
            again = StateMachine(LevelDBBackend(engine))
            assert again.applied_index == mem.sm.applied_index
            assert again.revision == mem.sm.revision
            assert again.snapshot() == mem.sm.snapshot()
            # restore a MemoryBackend snapshot into LevelDB and back
            again.restore(mem.sm.snapshot())
            assert again.snapshot() == mem.sm.snapshot()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_state_machine_snapshot_install_through_bulk_install(tmp_path: Path) -> None:
    src = Node()
    for i in range(50):
        src.ok(Put(b"k%d" % (i % 7), b"v%d" % i))
    src.ok(LeaseGrant(ttl_s=30, id=5, now_ms=0))
    with Engine.open(tmp_path) as engine:
        backend = LevelDBBackend(engine)
        backend.install(src.backend.scan(b"", None))
        sm = StateMachine(backend)
        assert sm.snapshot() == src.sm.snapshot()
        assert sm.applied_index == src.index
