"""The key schema of a member's LevelDB.

Every key starts with a one-byte namespace prefix; no prefix is a prefix of another, so a
range over one namespace never sees another's keys::

    m  meta        m/format      u32 format version (see FORMAT_VERSION)
                   m/cluster_id  u64 cluster id
                   m/member_id   u64 member id
    r  raft state  r/hard_state  HardState (codec)
                   r/log_offset  (index, term) of the last compacted entry: the log holds
                                 entries offset+1 .. last (codec "offset" record)
                   r/snapshot    SnapshotMeta + length of the snapshot data (codec)
                   r/conf_state  (index, ConfState) of the last applied conf change (codec)
    l  raft log    l/<u64 index big endian>  Entry (codec)
    d  snap data   d/<u32 chunk big endian>  the snapshot data, in CHUNK_BYTES pieces
    s  state       s/<key>       the replicated state machine's own keys, verbatim

Big-endian fixed-width indexes sort numerically, so ``l/`` iterates the log in index order
and its last key is the last index: a restart finds the log's bounds with two seeks.
"""

from __future__ import annotations

import struct

from raftkv.storage.engine import Namespace

FORMAT_VERSION = 1
"""Bumped whenever the schema or an encoding changes incompatibly."""

META = Namespace(b"m")
RAFT = Namespace(b"r")
LOG = Namespace(b"l")
SNAP_DATA = Namespace(b"d")
STATE = Namespace(b"s")
NAMESPACES = (META, RAFT, LOG, SNAP_DATA, STATE)

META_FORMAT = META.key(b"/format")
META_CLUSTER_ID = META.key(b"/cluster_id")
META_MEMBER_ID = META.key(b"/member_id")

HARD_STATE = RAFT.key(b"/hard_state")
LOG_OFFSET = RAFT.key(b"/log_offset")
SNAP_META = RAFT.key(b"/snapshot")
CONF_STATE = RAFT.key(b"/conf_state")

CHUNK_BYTES = 1 << 20
"""Snapshot data is stored in pieces of this size, so no LevelDB value is huge."""

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_LOG_PREFIX = LOG.key(b"/")
_SNAP_PREFIX = SNAP_DATA.key(b"/")
LOG_START = _LOG_PREFIX
LOG_END = LOG.key(b"0")  # b"/" + 1: just past every log key
SNAP_DATA_START = _SNAP_PREFIX
SNAP_DATA_END = SNAP_DATA.key(b"0")


def log_key(index: int) -> bytes:
    """The key of the log entry at ``index`` (0 <= index < 2**64)."""
    return _LOG_PREFIX + _U64.pack(index)


def log_index(key: bytes) -> int:
    """Inverse of :func:`log_key`."""
    index: int = _U64.unpack_from(key, len(_LOG_PREFIX))[0]
    return index


def snap_chunk_key(chunk: int) -> bytes:
    """The key of the ``chunk``-th piece of the snapshot data."""
    return _SNAP_PREFIX + _U32.pack(chunk)


def encode_u64(value: int) -> bytes:
    """A u64 meta value (big endian)."""
    return _U64.pack(value)


def decode_u64(raw: bytes) -> int:
    """Inverse of :func:`encode_u64`; raises ``struct.error`` on a wrong length."""
    value: int = _U64.unpack(raw)[0]
    return value


def encode_u32(value: int) -> bytes:
    """A u32 meta value (big endian)."""
    return _U32.pack(value)


def decode_u32(raw: bytes) -> int:
    """Inverse of :func:`encode_u32`; raises ``struct.error`` on a wrong length."""
    value: int = _U32.unpack(raw)[0]
    return value


def _check_disjoint() -> None:
    prefixes = [ns.prefix for ns in NAMESPACES]
    for a in prefixes:
        for b in prefixes:
            if a != b and b.startswith(a):
                raise RuntimeError(f"namespace {a!r} is a prefix of {b!r}")


_check_disjoint()
