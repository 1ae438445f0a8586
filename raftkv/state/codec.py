"""Deterministic binary encoding of commands and results (never pickle).

Format: one version byte (:data:`FORMAT_VERSION`), then one *record*::

    record  := tag:uvarint  nfields:uvarint  field*
    int     := zigzag uvarint (int64 range only)
    bool    := 0x00 | 0x01
    bytes   := length:uvarint  raw
    str     := bytes of its UTF-8 encoding
    enum    := uvarint of its value
    tuple   := count:uvarint  item*
    union   := member-index:u8  member        (members in declaration order)
    nested dataclass := nfields:uvarint field*   (its type is known from the annotation)

Trailing fields equal to their declared default are left out (``nfields`` counts the
fields written), which keeps the encoding canonical and small.

The tag of a record is its index in :data:`_TYPES`, which is append-only. Fields are written
in declaration order; a decoder that reads fewer fields than it knows (an entry written by
an older version) fills in the declared defaults, so fields may be appended with defaults
without breaking logs already on disk. The same value always encodes to the same bytes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

from raftkv.state import commands as c

FORMAT_VERSION = 1

_TYPES: tuple[type, ...] = (
    c.Request, c.Range, c.Put, c.DeleteRange, c.Compare, c.Txn, c.Compact,
    c.LeaseGrant, c.LeaseRevoke, c.LeaseRenew, c.LeaseCheckpointItem, c.LeaseCheckpoint,
    c.KeyValue, c.Event, c.RangeResult, c.PutResult, c.DeleteResult, c.TxnResult,
    c.CompactResult, c.LeaseGrantResult, c.LeaseRevokeResult, c.LeaseRenewResult,
    c.LeaseCheckpointResult, c.ErrorResult,
)  # fmt: skip
_TAG_OF: dict[type, int] = {t: i for i, t in enumerate(_TYPES)}

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_MAX_VARINT_BYTES = 10

T = TypeVar("T")


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected type."""


class _Reader:
    """A cursor over the input bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError("truncated input")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uvarint(self) -> int:
        result = 0
        for i in range(_MAX_VARINT_BYTES):
            if self.pos >= len(self.data):
                raise DecodeError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise DecodeError("non-canonical varint")
                return result
        raise DecodeError("varint too long")


def _put_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


_Enc = Callable[[bytearray, Any], None]
_Dec = Callable[[_Reader], Any]


def _enc_int(out: bytearray, value: Any) -> None:
    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
        raise TypeError(f"expected an int64, got {value!r}")
    _put_uvarint(out, (value << 1) if value >= 0 else ((-value << 1) - 1))


def _dec_int(r: _Reader) -> int:
    z = r.uvarint()
    value = (z >> 1) if not z & 1 else -((z + 1) >> 1)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise DecodeError("integer out of int64 range")
    return value


def _enc_bool(out: bytearray, value: Any) -> None:
    if type(value) is not bool:
        raise TypeError(f"expected a bool, got {value!r}")
    out.append(1 if value else 0)


def _dec_bool(r: _Reader) -> bool:
    byte = r.take(1)[0]
    if byte > 1:
        raise DecodeError("invalid bool")
    return byte == 1


def _enc_bytes(out: bytearray, value: Any) -> None:
    if type(value) is not bytes:
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    _put_uvarint(out, len(value))
    out += value


def _dec_bytes(r: _Reader) -> bytes:
    return r.take(r.uvarint())


def _enc_str(out: bytearray, value: Any) -> None:
    if type(value) is not str:
        raise TypeError(f"expected str, got {type(value).__name__}")
    _enc_bytes(out, value.encode("utf-8"))


def _dec_str(r: _Reader) -> str:
    try:
        return _dec_bytes(r).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid UTF-8") from exc


def _enum_codec(enum_type: type[IntEnum]) -> tuple[_Enc, _Dec]:
    def enc(out: bytearray, value: Any) -> None:
        if not isinstance(value, enum_type):
            raise TypeError(f"expected {enum_type.__name__}, got {value!r}")
        _put_uvarint(out, int(value))

    def dec(r: _Reader) -> IntEnum:
        try:
            return enum_type(r.uvarint())
        except ValueError as exc:
            raise DecodeError(f"invalid {enum_type.__name__}") from exc

    return enc, dec


def _tuple_codec(item: tuple[_Enc, _Dec]) -> tuple[_Enc, _Dec]:
    enc_item, dec_item = item

    def enc(out: bytearray, value: Any) -> None:
        if type(value) is not tuple:
            raise TypeError(f"expected a tuple, got {type(value).__name__}")
        _put_uvarint(out, len(value))
        for v in value:
            enc_item(out, v)

    def dec(r: _Reader) -> tuple[Any, ...]:
        n = r.uvarint()
        if n > len(r.data) - r.pos:  # every item takes at least one byte
            raise DecodeError("tuple longer than input")
        return tuple(dec_item(r) for _ in range(n))

    return enc, dec


def _matches(member: Any, value: Any) -> bool:
    if member is types.NoneType:
        return value is None
    if member is int:
        return type(value) is int
    return isinstance(value, member)


def _union_codec(members: tuple[Any, ...]) -> tuple[_Enc, _Dec]:
    codecs = [_codec(m) for m in members]

    def enc(out: bytearray, value: Any) -> None:
        for i, member in enumerate(members):
            if _matches(member, value):
                out.append(i)
                codecs[i][0](out, value)
                return
        raise TypeError(f"{type(value).__name__} is not one of {members}")

    def dec(r: _Reader) -> Any:
        i = r.take(1)[0]
        if i >= len(codecs):
            raise DecodeError("invalid union member")
        return codecs[i][1](r)

    return enc, dec


_PRIMITIVES: dict[Any, tuple[_Enc, _Dec]] = {
    int: (_enc_int, _dec_int),
    bool: (_enc_bool, _dec_bool),
    bytes: (_enc_bytes, _dec_bytes),
    str: (_enc_str, _dec_str),
    types.NoneType: (lambda out, value: None, lambda r: None),
}


def _codec(tp: Any) -> tuple[_Enc, _Dec]:
    """Build the encoder and decoder for one annotated type."""
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        return _enum_codec(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        rec = _record(tp)
        return rec.encode_fields, rec.decode_fields
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_codec(_codec(args[0]))
    if origin in (types.UnionType, typing.Union):
        return _union_codec(args)
    raise TypeError(f"no codec for {tp!r}")


class _Record:
    """Encoder and decoder of one dataclass; fields are resolved lazily (types recurse)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields: list[tuple[str, _Enc, _Dec]] = []
        self.defaults: list[Any] = []

    def resolve(self) -> None:
        hints = typing.get_type_hints(self.cls)
        for f in dataclasses.fields(self.cls):
            enc, dec = _codec(hints[f.name])
            self.fields.append((f.name, enc, dec))
            self.defaults.append(f.default)

    def encode_fields(self, out: bytearray, value: Any) -> None:
        if type(value) is not self.cls:
            raise TypeError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        values = [getattr(value, name) for name, _, _ in self.fields]
        n = len(values)  # trailing fields equal to their default are left out
        while n > 0 and _is_default(values[n - 1], self.defaults[n - 1]):
            n -= 1
        _put_uvarint(out, n)
        for (_, enc, _), v in zip(self.fields[:n], values, strict=False):
            enc(out, v)

    def decode_fields(self, r: _Reader) -> Any:
        n = r.uvarint()
        if n > len(self.fields):
            raise DecodeError(f"{self.cls.__name__}: {n} fields, know {len(self.fields)}")
        kwargs: dict[str, Any] = {}
        for i, (name, _, dec) in enumerate(self.fields):
            if i < n:
                kwargs[name] = dec(r)
            elif self.defaults[i] is dataclasses.MISSING:
                raise DecodeError(f"{self.cls.__name__}: required field {name} missing")
        return self.cls(**kwargs)


def _is_default(value: Any, default: Any) -> bool:
    return (
        default is not dataclasses.MISSING and type(value) is type(default) and (value == default)
    )


_RECORDS: dict[type, _Record] = {}


def _record(cls: type) -> _Record:
    rec = _RECORDS.get(cls)
    if rec is None:
        rec = _RECORDS[cls] = _Record(cls)
        rec.resolve()
    return rec


def encode(value: object) -> bytes:
    """Encode one value of a type of :mod:`raftkv.state.commands`.

    Raises:
        TypeError: the value (or a field of it) is not of an encodable type, or an int is
            outside the int64 range.
    """
    tag = _TAG_OF.get(type(value))
    if tag is None:
        raise TypeError(f"cannot encode {type(value).__name__}")
    out = bytearray([FORMAT_VERSION])
    _put_uvarint(out, tag)
    _record(type(value)).encode_fields(out, value)
    return bytes(out)


def _decode_checked(data: bytes, expected: type | tuple[type, ...]) -> object:
    r = _Reader(bytes(data))
    if r.take(1)[0] != FORMAT_VERSION:
        raise DecodeError("unknown format version")
    tag = r.uvarint()
    if tag >= len(_TYPES):
        raise DecodeError(f"unknown type tag {tag}")
    try:
        value = _record(_TYPES[tag]).decode_fields(r)
    except (TypeError, RecursionError) as exc:
        raise DecodeError(str(exc)) from exc
    if r.pos != len(r.data):
        raise DecodeError("trailing bytes")
    if not isinstance(value, expected):
        raise DecodeError(f"expected {expected}, got {type(value).__name__}")
    return value


def decode(data: bytes, expected: type[T]) -> T:
    """Decode bytes written by :func:`encode`, checking that the result is an ``expected``.

    Raises:
        DecodeError: the data is malformed, has trailing bytes, an unknown version or tag,
            or decodes to a value of another type.
    """
    return typing.cast(T, _decode_checked(data, expected))


def encode_request(request: c.Request) -> bytes:
    """Encode a :class:`~raftkv.state.commands.Request` for a Raft log entry."""
    return encode(request)


def decode_request(data: bytes) -> c.Request:
    """Decode a log entry written by :func:`encode_request`."""
    return decode(data, c.Request)


_RESPONSE_TYPES: tuple[type, ...] = typing.get_args(c.Response)


def encode_response(response: c.Response) -> bytes:
    """Encode the result of applying a command (stored for de-duplication)."""
    return encode(response)


def decode_response(data: bytes) -> c.Response:
    """Decode :func:`encode_response`."""
    return typing.cast(c.Response, _decode_checked(data, _RESPONSE_TYPES))
