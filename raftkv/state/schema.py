"""The key layout of the state machine inside its :class:`~raftkv.state.backend.Backend`.

One byte of prefix per namespace; every multi-byte integer is big-endian so that byte order
is numeric order::

    b"k" + Revision(main, sub).to_bytes()   -> codec(KeyValue)   one record per change;
                                                                 a tombstone has
                                                                 create_revision == 0
    b"l" + lease id (offset int64)           -> ttl_s, expiry_ms  one record per lease
    b"d" + client id + seq (offset int64s)   -> de-duplication table (see state/dedup.py):
                                                 seq 0: floor + last index; seq >= 1:
                                                 index + codec(result)
    b"m" + name                              -> int64            meta: revision, compact
                                                                 revision, applied index

The backend is owned by the state machine: nothing else writes into it.
"""

from __future__ import annotations

import struct

KV_PREFIX = b"k"
LEASE_PREFIX = b"l"
DEDUP_PREFIX = b"d"
META_REVISION = b"mrevision"
META_COMPACT = b"mcompact"
META_APPLIED = b"mapplied"

_I64 = struct.Struct(">q")
_OFFSET = 1 << 63


def next_prefix(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (one-byte prefixes)."""
    return bytes([prefix[0] + 1])


def encode_i64(value: int) -> bytes:
    """Encode a signed 64-bit integer (meta values)."""
    return _I64.pack(value)


def decode_i64(data: bytes) -> int:
    """Decode :func:`encode_i64`."""
    value: int = _I64.unpack(data)[0]
    return value


def ordered_id(value: int) -> bytes:
    """Encode a signed 64-bit id so that byte order is numeric order."""
    return (value + _OFFSET).to_bytes(8, "big")


def decode_ordered_id(data: bytes) -> int:
    """Decode :func:`ordered_id`."""
    return int.from_bytes(data, "big") - _OFFSET
