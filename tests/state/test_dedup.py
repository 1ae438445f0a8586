"""The de-duplication table (raftkv/state/dedup.py): many requests in flight per client,
bounded by acknowledgements and by log order, persistent and deterministic."""

from __future__ import annotations

import pytest

from raftkv.state import MemoryBackend, StateMachine, dedup
from raftkv.state.commands import ErrorCode, ErrorResult, Put, PutResult, Range
from tests.state.helpers import Node


def test_out_of_order_retries_of_many_in_flight_requests_apply_once() -> None:
    node = Node()
    first = {seq: node.apply(Put(b"k", b"%d" % seq), client_id=3, seq=seq)
             for seq in (2, 1, 5, 3, 4)}
    revision = node.sm.revision
    for seq in (1, 2, 3, 4, 5, 5, 1):
        assert node.apply(Put(b"k", b"%d" % seq), client_id=3, seq=seq) == first[seq]
    assert node.sm.revision == revision  # nothing applied twice
    assert node.sm.range(Range(b"k")).kvs[0].version == 5


def test_acknowledged_records_are_dropped_and_late_duplicates_are_stale() -> None:
    node = Node()
    for seq in range(1, 11):
        node.apply(Put(b"k"), client_id=4, seq=seq)
    assert len(node.sm._dedup) == 10
    node.apply(Put(b"k"), client_id=4, seq=11, ack=8)  # 1..7 answered
    assert len(node.sm._dedup) == 4  # 8, 9, 10, 11
    stale = node.apply(Put(b"k"), client_id=4, seq=3)
    assert isinstance(stale, ErrorResult)
    assert stale.code == ErrorCode.STALE_REQUEST
    assert node.apply(Put(b"k"), client_id=4, seq=9) == PutResult(revision=10)


def test_per_client_bound_evicts_lowest_seq_and_raises_the_floor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "MAX_PER_CLIENT", 3)
    node = Node()
    for seq in range(1, 6):
        node.apply(Put(b"k"), client_id=5, seq=seq)
    assert len(node.sm._dedup) == 3
    revision = node.sm.revision
    late = node.apply(Put(b"k"), client_id=5, seq=1)  # evicted: never applied twice
    assert isinstance(late, ErrorResult)
    assert late.code == ErrorCode.STALE_REQUEST
    assert node.apply(Put(b"k"), client_id=5, seq=4) == PutResult(revision=5)
    assert node.sm.revision == revision


def test_client_bound_evicts_the_least_recently_active_client_by_log_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "MAX_CLIENTS", 2)
    node = Node()
    node.apply(Put(b"k"), client_id=1, seq=1)
    node.apply(Put(b"k"), client_id=2, seq=1)
    node.apply(Put(b"k"), client_id=1, seq=2)  # client 2 is now the oldest
    node.apply(Put(b"k"), client_id=3, seq=1)
    assert set(node.sm._dedup._clients) == {1, 3}
    revision = node.sm.revision
    assert node.apply(Put(b"k"), client_id=1, seq=1) == PutResult(revision=2)
    assert node.sm.revision == revision


def test_table_survives_restart_and_snapshot_and_is_deterministic() -> None:
    a, b = Node(), Node()
    for node in (a, b):
        for seq in (1, 3, 2):
            node.apply(Put(b"k", b"%d" % seq), client_id=9, seq=seq, ack=1)
        node.apply(Put(b"k"), client_id=8, seq=1)
    assert a.sm.snapshot() == b.sm.snapshot()  # same entries, same bytes
    restarted = Node(a.backend)
    assert restarted.apply(Put(b"k", b"3"), client_id=9, seq=3) == PutResult(revision=3)
    fresh = StateMachine(MemoryBackend())
    fresh.restore(a.sm.snapshot())
    assert len(fresh._dedup) == len(a.sm._dedup) == 4
    assert list(fresh._dedup._clients) == [9, 8]


def test_client_zero_is_never_deduplicated() -> None:
    node = Node()
    node.apply(Put(b"k"))
    node.apply(Put(b"k"))
    assert node.sm.revision == 3
    assert len(node.sm._dedup) == 0


def test_a_retry_from_an_evicted_client_is_refused_not_applied_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "MAX_CLIENTS", 2)
    node = Node()
    node.apply(Put(b"k", b"once"), client_id=7, seq=1, ack=1)
    node.apply(Put(b"k", b"two"), client_id=7, seq=2, ack=1)  # its answer is lost
    node.apply(Put(b"x"), client_id=8, seq=1)
    node.apply(Put(b"x"), client_id=9, seq=1)  # client 7 evicted with its records
    assert 7 not in node.sm._dedup._clients
    revision = node.sm.revision
    retry = node.apply(Put(b"k", b"two"), client_id=7, seq=2, ack=2)  # 1 was answered
    assert isinstance(retry, ErrorResult)
    assert retry.code == ErrorCode.STALE_REQUEST
    assert retry.message.startswith("raftkv: stale request: client 7 is unknown")
    assert node.sm.revision == revision  # not applied a second time
    # a new session (new id, seqs from 1) is accepted
    assert node.apply(Put(b"k", b"new"), client_id=10, seq=1, ack=1) == \
        PutResult(revision=revision + 1)
