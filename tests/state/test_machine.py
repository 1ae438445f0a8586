"""StateMachine: apply order, no-ops, de-duplication, atomic batches, snapshot/restore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.errors import CompactedError, LeaseNotFoundError
from raftkv.state import MemoryBackend, StateMachine, WriteBatch, encode_request, schema
from raftkv.state.commands import (
    ErrorCode,
    ErrorResult,
    LeaseGrant,
    Put,
    PutResult,
    Range,
    Request,
)
from raftkv.state.errors import ApplyError, FutureRevisionError, StaleRequestError
from raftkv.state.machine import error_to_exception
from tests.state import strategies as s
from tests.state.helpers import Node


class RecordingBackend(MemoryBackend):
    """Remembers every batch; can be told to fail the next write."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[WriteBatch] = []
        self.fail_next = False

    def write(self, batch: WriteBatch) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.batches.append(batch)
        super().write(batch)

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        return super().scan(start, end)


def entry(op: Put | LeaseGrant | Range, client_id: int = 0, seq: int = 0) -> bytes:
    return encode_request(Request(client_id, seq, op))


def test_empty_entry_only_advances_applied_index() -> None:
    backend = RecordingBackend()
    sm = StateMachine(backend)
    applied = sm.apply(1, b"")
    assert applied.result is None
    assert applied.events == ()
    assert sm.applied_index == 1
    assert sm.revision == 1
    assert backend.batches[-1].ops == [(schema.META_APPLIED, schema.encode_i64(1))]


def test_applied_index_and_dedup_written_in_the_same_batch_as_the_data() -> None:
    backend = RecordingBackend()
    sm = StateMachine(backend)
    sm.apply(1, entry(Put(b"a", b"v"), client_id=7, seq=1))
    (batch,) = backend.batches
    keys = [k for k, _ in batch.ops]
    assert any(k.startswith(schema.KV_PREFIX) for k in keys)
    assert schema.META_REVISION in keys
    assert schema.META_APPLIED in keys
    assert schema.DEDUP_PREFIX + schema.ordered_id(7) + schema.ordered_id(1) in keys


def test_already_applied_entries_are_skipped_and_gaps_are_fatal() -> None:
    sm = StateMachine(MemoryBackend())
    sm.apply(1, entry(Put(b"a")))
    assert sm.apply(1, entry(Put(b"a"))).result is None
    assert sm.revision == 2
    with pytest.raises(ApplyError):
        sm.apply(3, b"")
    with pytest.raises(ApplyError):
        sm.apply(2, b"\x01garbage")
    assert sm.applied_index == 1


def test_retried_proposal_is_applied_once_and_returns_the_same_result() -> None:
    node = Node()
    first = node.apply(Put(b"a", b"1"), client_id=5, seq=1)
    again = node.apply(Put(b"a", b"1"), client_id=5, seq=1)
    assert first == again == PutResult(revision=2)
    assert node.sm.revision == 2
    assert node.sm.applied_index == 2
    # seq 2 acknowledges seq 1 (ack=2): a late duplicate of seq 1 is stale, not re-applied
    assert node.apply(Put(b"a", b"2"), client_id=5, seq=2, ack=2) == PutResult(revision=3)
    stale = node.apply(Put(b"a", b"1"), client_id=5, seq=1)
    assert isinstance(stale, ErrorResult)
    assert stale.code == ErrorCode.STALE_REQUEST
    assert isinstance(error_to_exception(stale), StaleRequestError)
    assert node.sm.revision == 3
    # other clients and client 0 are independent
    assert node.apply(Put(b"a", b"3"), client_id=6, seq=1) == PutResult(revision=4)
    assert node.apply(Put(b"a", b"3")) == PutResult(revision=5)
    assert node.apply(Put(b"a", b"3")) == PutResult(revision=6)


def test_error_results_are_deduplicated_too() -> None:
    node = Node()
    first = node.apply(Put(b"a", lease=3), client_id=1, seq=1)
    node.ok(LeaseGrant(3, 10, 0))
    assert node.apply(Put(b"a", lease=3), client_id=1, seq=1) == first
    assert isinstance(first, ErrorResult)
    assert isinstance(error_to_exception(first), LeaseNotFoundError)


def test_dedup_table_survives_restart() -> None:
    node = Node()
    node.apply(Put(b"a"), client_id=9, seq=4)
    again = Node(node.backend)
    assert again.index == 1
    assert again.apply(Put(b"a"), client_id=9, seq=4) == PutResult(revision=2)
    assert again.sm.revision == 2


def test_failed_backend_write_leaves_state_unchanged() -> None:
    backend = RecordingBackend()
    sm = StateMachine(backend)
    sm.apply(1, entry(Put(b"a", b"1")))
    backend.fail_next = True
    with pytest.raises(OSError, match="disk full"):
        sm.apply(2, entry(Put(b"a", b"2"), client_id=1, seq=1))
    assert sm.applied_index == 1
    assert sm.revision == 2
    assert sm.range(Range(b"a")).kvs[0].value == b"1"
    assert sm.apply(2, entry(Put(b"a", b"2"), client_id=1, seq=1)).result == PutResult(3)


def test_error_conversions() -> None:
    exc = error_to_exception(ErrorResult(ErrorCode.COMPACTED, "m", compact_revision=4))
    assert isinstance(exc, CompactedError)
    assert exc.compact_revision == 4
    assert isinstance(
        error_to_exception(ErrorResult(ErrorCode.FUTURE_REVISION, "f")), FutureRevisionError
    )


def test_snapshot_restore_roundtrip_and_corruption() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 0))
    node.ok(Put(b"a", b"1", lease=1))
    node.apply(Put(b"b", b"2"), client_id=3, seq=1)
    snap = node.sm.snapshot()
    other = Node()
    other.ok(Put(b"junk", b"x"))
    other.sm.restore(snap)
    assert other.sm.snapshot() == snap
    assert other.sm.applied_index == node.sm.applied_index == 3
    assert other.sm.range(Range(b"\0", b"\0")) == node.sm.range(Range(b"\0", b"\0"))
    with pytest.raises(ApplyError):
        other.sm.restore(snap[:-1] + bytes([snap[-1] ^ 1]))
    assert other.sm.snapshot() == snap


@settings(max_examples=150, deadline=None)
@given(st.lists(s.requests, max_size=12))
def test_any_decodable_request_applies_without_raising(requests: list[Request]) -> None:
    # An exception here would stop every replica at the same entry: apply must turn every
    # well-formed command, however absurd its values, into a result.
    sm = StateMachine(MemoryBackend())
    for index, request in enumerate(requests, start=1):
        applied = sm.apply(index, encode_request(request))
        assert applied.result is not None
    again = StateMachine(MemoryBackend())
    again.restore(sm.snapshot())
    assert again.snapshot() == sm.snapshot()


@settings(max_examples=150, deadline=None)
@given(st.lists(s.requests, min_size=1, max_size=25), st.integers(min_value=1, max_value=8))
def test_a_batch_of_entries_is_one_write_and_changes_nothing_else(
        requests: list[Request], chunk: int) -> None:
    """Entries applied inside ``applying_batch`` give the same results, events and backend
    contents as one by one, with one backend write per batch; later entries of a batch see
    the earlier ones (a key put twice, a lease granted then used, a retried request)."""
    single, batched = MemoryBackend(), RecordingBackend()
    one, many = StateMachine(single), StateMachine(batched)
    datas = [encode_request(r) for r in requests]
    expected = [one.apply(i + 1, d) for i, d in enumerate(datas)]
    got = []
    for start in range(0, len(datas), chunk):
        with many.applying_batch():
            got += [many.apply(i + 1, datas[i])
                    for i in range(start, min(start + chunk, len(datas)))]
    assert got == expected
    # One write per batch, plus at most one per failed request that had changed memory
    # (rebuilding memory from the backend writes what the batch held so far first).
    chunks = -(-len(datas) // chunk)
    failed = sum(isinstance(a.result, ErrorResult) for a in got)
    assert chunks <= len(batched.batches) <= chunks + failed
    assert list(batched.scan(b"", None)) == list(single.scan(b"", None))
    assert many.revision == one.revision
    assert many.applied_index == len(datas)


@settings(max_examples=150, deadline=None)
@given(st.lists(s.requests, min_size=1, max_size=25), st.lists(st.booleans(), min_size=25,
                                                               max_size=25))
def test_applying_the_proposer_s_decoded_request_changes_nothing(
        requests: list[Request], pass_decoded: list[bool]) -> None:
    """The member that proposed an entry applies the Request object it encoded instead of
    decoding the bytes again: results, events and backend contents are the same as from
    the bytes alone (what every other member applies)."""
    from_bytes, from_objects = MemoryBackend(), MemoryBackend()
    a, b = StateMachine(from_bytes), StateMachine(from_objects)
    for i, request in enumerate(requests):
        data = encode_request(request)
        expected = a.apply(i + 1, data)
        got = b.apply(i + 1, data, request if pass_decoded[i] else None)
        assert got == expected
    assert list(from_objects.scan(b"", None)) == list(from_bytes.scan(b"", None))
    assert b.revision == a.revision


def test_reads_during_a_batch_see_its_writes_and_a_failed_write_is_fatal() -> None:
    backend = RecordingBackend()
    sm = StateMachine(backend)
    with sm.applying_batch():
        sm.apply(1, entry(Put(b"a", b"1")))
        sm.apply(2, entry(Put(b"a", b"2")))
        assert backend.batches == []
        (kv,) = sm.range(Range(b"a")).kvs
        assert (kv.value, kv.version, kv.create_revision) == (b"2", 2, 2)
    assert len(backend.batches) == 1
    backend.fail_next = True
    with pytest.raises(OSError, match="disk full"), sm.applying_batch():
        sm.apply(3, entry(Put(b"b")))
    assert StateMachine(backend).applied_index == 2  # nothing of the failed batch landed
