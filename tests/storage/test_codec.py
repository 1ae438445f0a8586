"""The storage codec: round trips, compactness, and rejection of bad bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkv.raft.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from raftkv.storage import CorruptionError
from raftkv.storage import codec as c

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
IDS = st.frozensets(U64, max_size=5)
entries = st.builds(Entry, U64, U64, st.sampled_from(list(EntryType)), st.binary(max_size=64))
hard_states = st.builds(HardState, U64, U64, U64)
conf_states = st.builds(ConfState, IDS, IDS)
metas = st.builds(SnapshotMeta, U64, U64, conf_states)


@given(entries)
def test_entry_round_trip(e: Entry) -> None:
    raw = c.encode_entry(e)
    assert c.decode_entry(raw) == e
    assert c.decode_entry_term(raw) == e.term


@given(hard_states)
def test_hard_state_round_trip(hs: HardState) -> None:
    assert c.decode_hard_state(c.encode_hard_state(hs)) == hs


@given(conf_states)
def test_conf_state_round_trip(cs: ConfState) -> None:
    assert c.decode_conf_state(c.encode_conf_state(cs)) == cs


@given(metas, U64)
def test_snapshot_records_round_trip(meta: SnapshotMeta, n: int) -> None:
    assert c.decode_snapshot_meta(c.encode_snapshot_meta(meta)) == meta
    assert c.decode_snapshot_record(c.encode_snapshot_record(meta, n)) == (meta, n)
    assert c.decode_conf_record(c.encode_conf_record(n, meta.conf_state)) == (
        n, meta.conf_state)
    assert c.decode_offset(c.encode_offset(meta.index, n)) == (meta.index, n)


def test_compact() -> None:
    assert len(c.encode_entry(Entry(term=5, index=100, data=b"abc"))) == 1 + 1 + 1 + 1 + 3
    assert len(c.encode_hard_state(HardState(term=3, vote=2, commit=1000))) == 1 + 1 + 1 + 2
    assert len(c.encode_entry(Entry(term=(1 << 64) - 1, index=1))) == 1 + 1 + 10 + 1


@given(st.binary(max_size=30))
def test_garbage_raises_only_corruption(raw: bytes) -> None:
    for decode in (c.decode_entry, c.decode_hard_state, c.decode_conf_state,
                   c.decode_snapshot_meta, c.decode_snapshot_record, c.decode_offset,
                   c.decode_conf_record):
        with contextlib.suppress(CorruptionError):
            decode(raw)


@given(hard_states)
def test_truncation_and_trailing_bytes_are_rejected(hs: HardState) -> None:
    raw = c.encode_hard_state(hs)
    for cut in range(len(raw)):
        with pytest.raises(CorruptionError):
            c.decode_hard_state(raw[:cut])
    with pytest.raises(CorruptionError, match="trailing"):
        c.decode_hard_state(raw + b"\x00")


def test_wrong_version_and_type() -> None:
    raw = c.encode_entry(Entry(term=1, index=1))
    with pytest.raises(CorruptionError, match="version 2"):
        c.decode_entry(b"\x02" + raw[1:])
    with pytest.raises(CorruptionError, match="unknown type"):
        c.decode_entry(raw[:1] + b"\x09" + raw[2:])


def test_negative_integers_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        c.encode_hard_state(HardState(term=-1))


def test_overlong_varint() -> None:
    with pytest.raises(CorruptionError, match="longer"):
        c.get_uvarint(b"\xff" * 11, 0)
