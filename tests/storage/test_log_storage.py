"""One behavioural suite run against MemoryStorage and DurableLogStorage (with and without
its tail cache), so the two provably agree. Cases follow etcd-io/raft ``storage_test.go``.
"""

from __future__ import annotations

import pytest

from raftkv.raft.errors import Compacted, RaftInvariantError, Unavailable
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from tests.storage.conftest import Factory
from tests.storage.helpers import WritableStorage, ents

CS = ConfState(voters=frozenset({1, 2, 3}), learners=frozenset({9}))


def make_log(make: Factory, last: int = 5, offset: int = 3) -> WritableStorage:
    """Entries ``offset .. last`` with term == index, the entry at ``offset`` the dummy."""
    s = make()
    s.append(ents(*[(i, i) for i in range(1, last + 1)]))
    s.compact(offset)
    return s


def test_empty(make_storage: Factory) -> None:
    s = make_storage()
    assert (s.first_index(), s.last_index()) == (1, 0)
    assert s.initial_state() == (HardState(), ConfState())
    assert s.term(0) == 0
    assert s.entries(1, 1) == []
    assert s.snapshot() == Snapshot()
    with pytest.raises(Compacted):
        s.entries(0, 1)
    with pytest.raises(Unavailable):
        s.term(1)
    with pytest.raises(Unavailable):
        s.entries(1, 2)


@pytest.mark.parametrize(("index", "expected"), [
    (2, Compacted), (3, 3), (4, 4), (5, 5), (6, Unavailable),
])
def test_term(make_storage: Factory, index: int, expected: int | type[Exception]) -> None:
    s = make_log(make_storage)
    if isinstance(expected, int):
        assert s.term(index) == expected
    else:
        with pytest.raises(expected):
            s.term(index)


SIZE = ents((4, 4))[0].size()  # every entry of make_log has the same size


@pytest.mark.parametrize(("lo", "hi", "max_size", "expected"), [
    (2, 6, 0, Compacted),
    (3, 4, 0, Compacted),
    (4, 5, 0, [4]),
    (4, 6, 0, [4, 5]),
    (4, 7, 0, [4, 5, 6]),
    (4, 7, 2 * SIZE, [4, 5]),
    (4, 7, 2 * SIZE + SIZE // 2, [4, 5]),
    (4, 7, 3 * SIZE - 1, [4, 5]),
    (4, 7, 3 * SIZE, [4, 5, 6]),
    (4, 7, 1, [4]),
    (5, 7, 1, [5]),
    (4, 8, 0, Unavailable),
    (5, 5, 0, []),
])
def test_entries(make_storage: Factory, lo: int, hi: int, max_size: int,
                 expected: list[int] | type[Exception]) -> None:
    s = make_log(make_storage, last=6)
    if isinstance(expected, list):
        assert s.entries(lo, hi, max_size) == ents(*[(i, i) for i in expected])
    else:
        with pytest.raises(expected):
            s.entries(lo, hi, max_size)


def test_entries_size_limit_with_uneven_payloads(make_storage: Factory) -> None:
    s = make_storage()
    log = [Entry(term=1, index=i, data=b"x" * (i * 7 % 23)) for i in range(1, 40)]
    s.append(log)
    for max_size in (0, 1, 16, 40, 100, 333, 10_000):
        for lo in (1, 5, 20):
            got = s.entries(lo, 40, max_size)
            assert got[0].index == lo
            total = sum(e.size() for e in got)
            assert len(got) == 1 or max_size == 0 or total <= max_size
            nxt = 40 - lo > len(got)
            assert not nxt or max_size == 0 or total + log[got[-1].index].size() > max_size


def test_first_last_index(make_storage: Factory) -> None:
    s = make_log(make_storage)
    assert (s.first_index(), s.last_index()) == (4, 5)
    s.append(ents((6, 5)))
    assert s.last_index() == 6
    s.compact(4)
    assert (s.first_index(), s.last_index()) == (5, 6)


@pytest.mark.parametrize(("index", "expected"), [
    (2, (4, 3)), (3, (4, 3)), (4, (5, 4)), (5, (6, 5)), (6, RaftInvariantError),
])
def test_compact(make_storage: Factory, index: int,
                 expected: tuple[int, int] | type[Exception]) -> None:
    s = make_log(make_storage)
    if isinstance(expected, tuple):
        s.compact(index)
        first, dummy_term = expected
        assert s.first_index() == first
        assert s.term(first - 1) == dummy_term
        assert s.last_index() == 5
    else:
        with pytest.raises(expected):
            s.compact(index)


@pytest.mark.parametrize(("index", "expected"), [
    (4, SnapshotMeta(index=4, term=4, conf_state=CS)),
    (5, SnapshotMeta(index=5, term=5, conf_state=CS)),
])
def test_create_snapshot(make_storage: Factory, index: int, expected: SnapshotMeta) -> None:
    s = make_log(make_storage)
    snap = s.create_snapshot(index, CS, b"data")
    assert snap == Snapshot(meta=expected, data=b"data")
    assert s.snapshot() == snap
    assert (s.first_index(), s.last_index()) == (4, 5)  # the log is kept
    assert s.initial_state()[1] == CS
    # an older or equal snapshot is not taken
    assert s.create_snapshot(index - 1, ConfState(), b"old") == snap
    assert s.create_snapshot(index, ConfState(), b"old") == snap


def test_create_snapshot_beyond_last(make_storage: Factory) -> None:
    s = make_log(make_storage)
    with pytest.raises(RaftInvariantError):
        s.create_snapshot(6, CS, b"")


def test_create_snapshot_below_first_is_compacted(make_storage: Factory) -> None:
    s = make_log(make_storage)
    with pytest.raises(Compacted):
        s.create_snapshot(2, CS, b"")


@pytest.mark.parametrize(("new", "expected"), [
    (ents((3, 3), (4, 4), (5, 5)), [(3, 3), (4, 4), (5, 5)]),
    (ents((3, 3), (4, 6), (5, 6)), [(3, 3), (4, 6), (5, 6)]),
    (ents((3, 3), (4, 4), (5, 5), (6, 5)), [(3, 3), (4, 4), (5, 5), (6, 5)]),
    # overwrite of the first entry, dropping what is below the offset
    (ents((2, 3), (3, 3), (4, 5)), [(3, 3), (4, 5)]),
    # truncate the existing entries and append
    (ents((4, 5)), [(3, 3), (4, 5)]),
    # direct append
    (ents((6, 5)), [(3, 3), (4, 4), (5, 5), (6, 5)]),
    # all below the offset: nothing happens
    (ents((1, 1), (2, 2)), [(3, 3), (4, 4), (5, 5)]),
])
def test_append(make_storage: Factory, new: list[Entry],
                expected: list[tuple[int, int]]) -> None:
    s = make_log(make_storage)
    s.append(new)
    assert s.first_index() - 1 == expected[0][0]
    assert s.term(expected[0][0]) == expected[0][1]
    assert s.last_index() == expected[-1][0]
    got = s.entries(s.first_index(), s.last_index() + 1)
    assert [(e.index, e.term) for e in got] == expected[1:]
    want_data = {e.index: e.data for e in new}
    assert all(e.data == want_data.get(e.index, e.data) for e in got)


def test_append_with_gap_is_an_invariant_error(make_storage: Factory) -> None:
    s = make_log(make_storage)
    with pytest.raises(RaftInvariantError):
        s.append(ents((7, 5)))
    assert s.last_index() == 5


def test_append_nothing(make_storage: Factory) -> None:
    s = make_log(make_storage)
    s.append([])
    assert s.last_index() == 5


def test_truncate_then_read_everything(make_storage: Factory) -> None:
    s = make_storage()
    s.append(ents(*[(i, 1) for i in range(1, 101)]))
    s.append(ents(*[(i, 2) for i in range(50, 61)]))
    assert s.last_index() == 60
    got = s.entries(1, 61)
    assert [(e.index, e.term) for e in got] == [(i, 1 if i < 50 else 2) for i in range(1, 61)]
    with pytest.raises(Unavailable):
        s.term(61)


def test_apply_snapshot(make_storage: Factory) -> None:
    s = make_log(make_storage)
    snap = Snapshot(meta=SnapshotMeta(index=4, term=4, conf_state=CS), data=b"s4")
    s.apply_snapshot(snap)
    assert s.snapshot() == snap
    assert (s.first_index(), s.last_index()) == (5, 4)  # the whole log is dropped
    assert s.term(4) == 4
    assert s.initial_state()[1] == CS
    # an older snapshot is ignored
    s.apply_snapshot(Snapshot(meta=SnapshotMeta(index=3, term=3), data=b"s3"))
    assert s.snapshot() == snap
    # a snapshot far ahead of the log
    far = Snapshot(meta=SnapshotMeta(index=100, term=7), data=b"far")
    s.apply_snapshot(far)
    assert (s.first_index(), s.last_index(), s.term(100)) == (101, 100, 7)
    with pytest.raises(Compacted):
        s.term(99)
    s.append(ents((101, 7), (102, 8)))
    assert [e.index for e in s.entries(101, 103)] == [101, 102]


def test_hard_state(make_storage: Factory) -> None:
    s = make_log(make_storage)
    hs = HardState(term=7, vote=2, commit=5)
    s.set_hard_state(hs)
    assert s.initial_state()[0] == hs
