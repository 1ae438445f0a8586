"""MVCC revisions and their order-preserving byte encoding."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from raftkv._frozen import fast_init

_REV = struct.Struct(">QQ")

REVISION_BYTES = _REV.size


@fast_init
@dataclass(frozen=True, slots=True, order=True)
class Revision:
    """One change inside the store: ``main`` is the store revision, ``sub`` orders the changes
    that share it (the n-th change of one request has ``sub == n``).

    Invariants:
        * ``0 <= main < 2**64`` and ``0 <= sub < 2**64``.
        * ordering of :class:`Revision` values, of ``(main, sub)`` tuples and of
          :meth:`to_bytes` outputs (compared as bytes) all agree.
    """

    main: int
    sub: int = 0

    def to_bytes(self) -> bytes:
        """Encode as 16 bytes: big-endian ``main`` then big-endian ``sub``."""
        return _REV.pack(self.main, self.sub)

    @classmethod
    def from_bytes(cls, data: bytes) -> Revision:
        """Decode 16 bytes written by :meth:`to_bytes`.

        Raises:
            ValueError: ``data`` is not exactly 16 bytes long.
        """
        if len(data) != REVISION_BYTES:
            raise ValueError(f"revision must be {REVISION_BYTES} bytes, got {len(data)}")
        main, sub = _REV.unpack(data)
        return cls(main, sub)
