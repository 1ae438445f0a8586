"""Versioned, compact binary encodings of the raft records kept on disk (never pickle).

Every top-level record starts with a version byte (:data:`VERSION`); integers are unsigned
LEB128 varints (1 byte below 128, at most 10 for a u64). Layouts, version 1::

    Entry        ver | type (1 byte) | term | index | data (the rest)
    HardState    ver | term | vote | commit
    ConfState    ver | n_voters | voter... | n_learners | learner...   (ascending ids)
    SnapshotMeta ver | index | term | ConfState without its version byte
    offset       ver | index | term                  (the log's compaction point)
    snapshot     SnapshotMeta | data length          (the r/snapshot record)
    conf record  ver | index | ConfState without its version byte

Decoders reject a wrong version, a truncated record and trailing bytes with
:class:`~raftkv.storage.errors.CorruptionError`; encoders reject negative integers with
``ValueError``.
"""

from __future__ import annotations

from raftkv.raft.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from raftkv.storage.errors import CorruptionError

VERSION = 1
_VERSION_BYTE = bytes([VERSION])
_ENTRY_TYPES = {int(t): t for t in EntryType}


def put_uvarint(out: bytearray, value: int) -> None:
    """Append ``value`` (>= 0) to ``out`` as an unsigned LEB128 varint."""
    if value < 0:
        raise ValueError(f"cannot encode negative integer {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def get_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; returns ``(value, position after it)``."""
    try:
        b = buf[pos]
        if b < 0x80:
            return b, pos + 1
        value = b & 0x7F
        shift = 7
        while True:
            pos += 1
            b = buf[pos]
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos + 1
            shift += 7
            if shift > 63:
                raise CorruptionError("varint longer than 10 bytes")
    except IndexError:
        raise CorruptionError("truncated varint") from None


def _check_version(raw: bytes, what: str) -> None:
    if not raw:
        raise CorruptionError(f"empty {what} record")
    if raw[0] != VERSION:
        raise CorruptionError(f"{what} record has version {raw[0]}, expected {VERSION}")


def _check_end(raw: bytes, pos: int, what: str) -> None:
    if pos != len(raw):
        raise CorruptionError(f"{what} record has {len(raw) - pos} trailing bytes")


# -- Entry ---------------------------------------------------------------------------------
def encode_entry(e: Entry) -> bytes:
    """Encode a log entry."""
    out = bytearray(_VERSION_BYTE)
    out.append(int(e.type))
    put_uvarint(out, e.term)
    put_uvarint(out, e.index)
    out += e.data
    return bytes(out)


def decode_entry(raw: bytes) -> Entry:
    """Inverse of :func:`encode_entry`."""
    _check_version(raw, "entry")
    if len(raw) < 2:
        raise CorruptionError("truncated entry record")
    kind = _ENTRY_TYPES.get(raw[1])
    if kind is None:
        raise CorruptionError(f"entry record has unknown type {raw[1]}")
    term, pos = get_uvarint(raw, 2)
    index, pos = get_uvarint(raw, pos)
    return Entry(term=term, index=index, type=kind, data=bytes(raw[pos:]))


# -- HardState -----------------------------------------------------------------------------
def encode_hard_state(hs: HardState) -> bytes:
    """Encode a hard state."""
    out = bytearray(_VERSION_BYTE)
    for n in (hs.term, hs.vote, hs.commit):
        put_uvarint(out, n)
    return bytes(out)


def decode_hard_state(raw: bytes) -> HardState:
    """Inverse of :func:`encode_hard_state`."""
    _check_version(raw, "hard state")
    term, pos = get_uvarint(raw, 1)
    vote, pos = get_uvarint(raw, pos)
    commit, pos = get_uvarint(raw, pos)
    _check_end(raw, pos, "hard state")
    return HardState(term=term, vote=vote, commit=commit)


# -- ConfState -----------------------------------------------------------------------------
def _put_conf_state(out: bytearray, cs: ConfState) -> None:
    for ids in (cs.voters, cs.learners):
        put_uvarint(out, len(ids))
        for node_id in sorted(ids):
            put_uvarint(out, node_id)


def _get_conf_state(raw: bytes, pos: int) -> tuple[ConfState, int]:
    groups: list[frozenset[int]] = []
    for _ in range(2):
        n, pos = get_uvarint(raw, pos)
        if n > len(raw) - pos:
            raise CorruptionError(f"conf state claims {n} ids in {len(raw) - pos} bytes")
        ids = []
        for _ in range(n):
            node_id, pos = get_uvarint(raw, pos)
            ids.append(node_id)
        groups.append(frozenset(ids))
    return ConfState(voters=groups[0], learners=groups[1]), pos


def encode_conf_state(cs: ConfState) -> bytes:
    """Encode a membership."""
    out = bytearray(_VERSION_BYTE)
    _put_conf_state(out, cs)
    return bytes(out)


def decode_conf_state(raw: bytes) -> ConfState:
    """Inverse of :func:`encode_conf_state`."""
    _check_version(raw, "conf state")
    cs, pos = _get_conf_state(raw, 1)
    _check_end(raw, pos, "conf state")
    return cs


# -- SnapshotMeta and the snapshot record ----------------------------------------------------
def _put_snapshot_meta(out: bytearray, meta: SnapshotMeta) -> None:
    put_uvarint(out, meta.index)
    put_uvarint(out, meta.term)
    _put_conf_state(out, meta.conf_state)


def _get_snapshot_meta(raw: bytes, pos: int) -> tuple[SnapshotMeta, int]:
    index, pos = get_uvarint(raw, pos)
    term, pos = get_uvarint(raw, pos)
    cs, pos = _get_conf_state(raw, pos)
    return SnapshotMeta(index=index, term=term, conf_state=cs), pos


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    """Encode snapshot metadata."""
    out = bytearray(_VERSION_BYTE)
    _put_snapshot_meta(out, meta)
    return bytes(out)


def decode_snapshot_meta(raw: bytes) -> SnapshotMeta:
    """Inverse of :func:`encode_snapshot_meta`."""
    _check_version(raw, "snapshot meta")
    meta, pos = _get_snapshot_meta(raw, 1)
    _check_end(raw, pos, "snapshot meta")
    return meta


def encode_snapshot_record(meta: SnapshotMeta, data_len: int) -> bytes:
    """The ``r/snapshot`` record: the metadata and the length of the stored data."""
    out = bytearray(_VERSION_BYTE)
    _put_snapshot_meta(out, meta)
    put_uvarint(out, data_len)
    return bytes(out)


def decode_snapshot_record(raw: bytes) -> tuple[SnapshotMeta, int]:
    """Inverse of :func:`encode_snapshot_record`."""
    _check_version(raw, "snapshot")
    meta, pos = _get_snapshot_meta(raw, 1)
    data_len, pos = get_uvarint(raw, pos)
    _check_end(raw, pos, "snapshot")
    return meta, data_len


# -- small records -------------------------------------------------------------------------
def encode_offset(index: int, term: int) -> bytes:
    """The ``r/log_offset`` record: index and term of the last compacted entry."""
    out = bytearray(_VERSION_BYTE)
    put_uvarint(out, index)
    put_uvarint(out, term)
    return bytes(out)


def decode_offset(raw: bytes) -> tuple[int, int]:
    """Inverse of :func:`encode_offset`."""
    _check_version(raw, "log offset")
    index, pos = get_uvarint(raw, 1)
    term, pos = get_uvarint(raw, pos)
    _check_end(raw, pos, "log offset")
    return index, term


def encode_conf_record(index: int, cs: ConfState) -> bytes:
    """The ``r/conf_state`` record: the membership after the conf change at ``index``."""
    out = bytearray(_VERSION_BYTE)
    put_uvarint(out, index)
    _put_conf_state(out, cs)
    return bytes(out)


def decode_conf_record(raw: bytes) -> tuple[int, ConfState]:
    """Inverse of :func:`encode_conf_record`."""
    _check_version(raw, "conf state")
    index, pos = get_uvarint(raw, 1)
    cs, pos = _get_conf_state(raw, pos)
    _check_end(raw, pos, "conf state")
    return index, cs


def decode_entry_term(raw: bytes) -> int:
    """Only the term of an encoded entry, without copying its data."""
    _check_version(raw, "entry")
    term, _ = get_uvarint(raw, 2)
    return term
