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

Implementation: the codec is on the path of every write (the leader encodes each proposal,
every member decodes it when applying, MVCC encodes a :class:`KeyValue` per put and decodes
it on reads). Rather than walk the annotations on every call, :class:`_Generator` writes
one encode and one decode function per record and tuple type from the annotations, once at
import, and compiles them into a private namespace (read them with
:func:`_generated_source`). Primitive fields, enums and unions are inlined with one-byte
fast paths; multi-byte varints, errors and rare types go through the small helpers below,
which keep every check of the format (int64 range, canonical varints). Decoders take and
return ``(data, pos)``; reading past the end of the input raises :class:`IndexError`,
which :func:`_decode_checked` turns into :class:`DecodeError`.
"""

from __future__ import annotations

import dataclasses
import linecache
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
    c.Permission, c.AuthEnable, c.AuthDisable, c.UserAdd, c.UserDelete,
    c.UserChangePassword, c.UserGrantRole, c.UserRevokeRole, c.RoleAdd, c.RoleDelete,
    c.RoleGrantPermission, c.RoleRevokePermission, c.TokenIssue, c.UserRecord, c.RoleRecord,
    c.TokenRecord, c.AuthResult,
)  # fmt: skip
_TAG_OF: dict[type, int] = {t: i for i, t in enumerate(_TYPES)}

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_MAX_VARINT_BYTES = 10

T = TypeVar("T")


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected type."""


_Enc = Callable[[bytearray, Any], None]
_Dec = Callable[[bytes, int], tuple[Any, int]]

# --------------------------------------------------------------------------- slow paths


def _put_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _enc_int(out: bytearray, value: Any) -> None:
    """Any int64 (the generated code inlines 0 <= value < 64)."""
    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
        raise TypeError(f"expected an int64, got {value!r}")
    z = (value << 1) if value >= 0 else ((-value << 1) - 1)
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _enc_str(out: bytearray, value: Any) -> None:
    if type(value) is not str:
        raise TypeError(f"expected str, got {type(value).__name__}")
    raw = value.encode("utf-8")
    _put_uvarint(out, len(raw))
    out += raw


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """The canonical uvarint at ``pos``: ``(value, position after it)``.

    Unrolled up to five bytes (values below 2**35: lengths, counts, revisions, seqs); a last
    byte of zero is non-canonical. Reading past the end raises :class:`IndexError`, which
    :func:`_decode_checked` turns into :class:`DecodeError`.
    """
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    r = b & 0x7F
    b = data[pos + 1]
    if b < 0x80:
        if b:
            return r | (b << 7), pos + 2
        raise DecodeError("non-canonical varint")
    r |= (b & 0x7F) << 7
    b = data[pos + 2]
    if b < 0x80:
        if b:
            return r | (b << 14), pos + 3
        raise DecodeError("non-canonical varint")
    r |= (b & 0x7F) << 14
    b = data[pos + 3]
    if b < 0x80:
        if b:
            return r | (b << 21), pos + 4
        raise DecodeError("non-canonical varint")
    r |= (b & 0x7F) << 21
    b = data[pos + 4]
    if b < 0x80:
        if b:
            return r | (b << 28), pos + 5
        raise DecodeError("non-canonical varint")
    r |= (b & 0x7F) << 28
    for i in range(5, _MAX_VARINT_BYTES):
        b = data[pos + i]
        if b < 0x80:
            if b:
                return r | (b << (7 * i)), pos + i + 1
            raise DecodeError("non-canonical varint")
        r |= (b & 0x7F) << (7 * i)
    raise DecodeError("varint too long")


def _dec_str(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _uvarint(data, pos)
    if pos + n > len(data):
        raise DecodeError("truncated input")
    try:
        return data[pos : pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid UTF-8") from exc


def _dec_enum(data: bytes, pos: int, enum_type: type[IntEnum]) -> tuple[IntEnum, int]:
    """An enum with values of more than one byte (none so far)."""
    value, pos = _uvarint(data, pos)
    try:
        return enum_type(value), pos
    except ValueError as exc:
        raise DecodeError(f"invalid {enum_type.__name__}") from exc


def _wrong_type(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__}")


def _wrong_repr(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {value!r}")


def _bad_count(cls: type, data: bytes, pos: int, known: int) -> DecodeError:
    """The error for a field count (at ``pos``) that is too high or misses required fields."""
    n, _ = _uvarint(data, pos)  # raises the more precise error of a malformed varint
    if n > known:
        return DecodeError(f"{cls.__name__}: {n} fields, know {known}")
    return DecodeError(f"{cls.__name__}: required field missing ({n} fields)")


def _not_a_member(value: Any, members: tuple[Any, ...]) -> TypeError:
    return TypeError(f"{type(value).__name__} is not one of {members}")


# --------------------------------------------------------------------------- code templates
# An encode template writes the local ``{v}`` to ``out``; a decode template reads ``data``
# at ``pos`` into the local ``{t}`` and advances ``pos``. ``{x}`` is the name of an object
# bound in the generated namespace (an enum class, or its table from byte to member).

_ENC_INT = """\
if type({v}) is int and 0 <= {v} < 64:
    out.append({v} << 1)
else:
    _enc_int(out, {v})"""
_DEC_INT = """\
{t} = data[pos]
pos += 1
if {t} >= 0x80:
    {t}, pos = _uvarint(data, pos - 1)
    if {t} > 0xFFFF_FFFF_FFFF_FFFF:  # the zigzag images of the int64s are the uint64s
        raise DecodeError("integer out of int64 range")
{t} = ({t} >> 1) ^ -({t} & 1)"""
_ENC_BOOL = """\
if {v} is True:
    out.append(1)
elif {v} is False:
    out.append(0)
else:
    raise _wrong_repr("a bool", {v})"""
_DEC_BOOL = """\
{t} = data[pos]
pos += 1
if {t} > 1:
    raise DecodeError("invalid bool")
{t} = {t} == 1"""
_ENC_COUNT = """\
if {v} < 0x80:
    out.append({v})
elif {v} < 0x4000:
    out.append(({v} & 0x7F) | 0x80)
    out.append({v} >> 7)
else:
    _put_uvarint(out, {v})"""
_DEC_COUNT = """\
{t} = data[pos]
pos += 1
if {t} >= 0x80:
    if 0 < data[pos] < 0x80:
        {t} = ({t} & 0x7F) | (data[pos] << 7)
        pos += 1
    else:
        {t}, pos = _uvarint(data, pos - 1)"""
_ENC_BYTES = """\
if type({v}) is not bytes:
    raise _wrong_type("bytes", {v})
size = len({v})
if size < 0x80:
    out.append(size)
elif size < 0x4000:
    out.append((size & 0x7F) | 0x80)
    out.append(size >> 7)
else:
    _put_uvarint(out, size)
out += {v}"""
_DEC_SLICE = """\
end = pos + {t}
if end > len(data):
    raise DecodeError("truncated input")
{t} = data[pos:end]
pos = end"""
_DEC_BYTES = f"{_DEC_COUNT}\n{_DEC_SLICE}"
_ENC_ENUM = """\
if not isinstance({v}, {x}):
    raise _wrong_repr({x}.__name__, {v})
out.append({v})"""
_DEC_ENUM = """\
{t} = {x}[data[pos]]
pos += 1
if {t} is None:
    raise DecodeError("invalid {name}")"""
_ENC_WIDE_ENUM = """\
if not isinstance({v}, {x}):
    raise _wrong_repr({x}.__name__, {v})
_put_uvarint(out, int({v}))"""
_DEC_WIDE_ENUM = "{t}, pos = _dec_enum(data, pos, {x})"

_PRIMITIVE_TEMPLATES: dict[Any, tuple[str, str]] = {
    int: (_ENC_INT, _DEC_INT),
    bool: (_ENC_BOOL, _DEC_BOOL),
    bytes: (_ENC_BYTES, _DEC_BYTES),
    str: ("_enc_str(out, {v})", "{t}, pos = _dec_str(data, pos)"),
    types.NoneType: ("pass", "{t} = None"),
}
_RUNTIME: dict[str, Any] = {
    f.__name__: f
    for f in (_put_uvarint, _enc_int, _enc_str, _uvarint, _dec_str, _dec_enum,
              _wrong_type, _wrong_repr, _bad_count, _not_a_member)
} | {"DecodeError": DecodeError, "_new": object.__new__}  # fmt: skip
_LITERAL_TYPES = (int, bool, bytes, str, types.NoneType)
_BUILTIN_TYPES = (int, bool, bytes, str, tuple)
_MISSING: Any = dataclasses.MISSING
_Fields = list[tuple[dataclasses.Field[Any], Any]]  # (field, resolved annotation)


class _Generator:
    """Writes the encode and decode functions of the record types and of every record and
    tuple type their fields use, then compiles them into one private namespace.

    A record or tuple type ``X`` gets ``_e_X(out, value)``, which appends the encoding of
    ``value`` to the bytearray ``out``, and ``_d_X(data, pos) -> (value, pos)``. Primitive,
    enum and union values are encoded inline. Functions call each other by their names in
    the namespace, so recursive types (a :class:`Txn` in a :class:`Txn`) need nothing
    special; other objects the code needs are bound in the namespace by :meth:`bind`.
    """

    def __init__(self) -> None:
        self.ns: dict[str, Any] = dict(_RUNTIME)
        self.names: dict[Any, str] = {}
        self.bound: dict[int, str] = {}
        self.todo: list[Any] = []
        self.lines: list[str] = []
        self.source = ""

    def bind(self, obj: Any, hint: str) -> str:
        """The name of ``obj`` in the namespace (bound on first use)."""
        name = self.bound.get(id(obj))
        if name is None:
            name = f"_{hint}" if f"_{hint}" not in self.ns else f"_{hint}_{len(self.bound)}"
            self.bound[id(obj)] = name
            self.ns[name] = obj
        return name

    def ref(self, tp: Any) -> str:
        """The suffix of the functions of a record or tuple type (queued on first use)."""
        name = self.names.get(tp)
        if name is None:
            name = tp.__name__ if _kind(tp) == "record" else "tuple"
            if name in self.names.values():
                name = f"{name}_{len(self.names)}"
            self.names[tp] = name
            self.todo.append(tp)
        return name

    def enc(self, tp: Any, v: str) -> str:
        """Source that encodes the local ``v``, of type ``tp``, to ``out``."""
        if tp in _PRIMITIVE_TEMPLATES:
            return _PRIMITIVE_TEMPLATES[tp][0].format(v=v)
        if isinstance(tp, type) and issubclass(tp, IntEnum):
            template = _ENC_WIDE_ENUM if _is_wide(tp) else _ENC_ENUM
            return template.format(v=v, x=self.bind(tp, tp.__name__))
        if _kind(tp) == "union":
            return self.union_enc(typing.get_args(tp), v)
        return f"_e_{self.ref(tp)}(out, {v})"

    def dec(self, tp: Any, t: str) -> str:
        """Source that decodes a ``tp`` at ``pos`` into the local ``t``."""
        if tp in _PRIMITIVE_TEMPLATES:
            return _PRIMITIVE_TEMPLATES[tp][1].format(t=t)
        if isinstance(tp, type) and issubclass(tp, IntEnum):
            if _is_wide(tp):
                return _DEC_WIDE_ENUM.format(t=t, x=self.bind(tp, tp.__name__))
            table = tuple(tp._value2member_map_.get(b) for b in range(256))
            return _DEC_ENUM.format(t=t, x=self.bind(table, f"{tp.__name__}_of_byte"),
                                    name=tp.__name__)  # fmt: skip
        if _kind(tp) == "union":
            return self.union_dec(typing.get_args(tp), t)
        return f"{t}, pos = _d_{self.ref(tp)}(data, pos)"

    def union_enc(self, members: tuple[Any, ...], v: str) -> str:
        """A member-index byte, then the member: the first one of the value's exact type."""
        lines = [f"t = type({v})"]
        for i, member in enumerate(members):
            if typing.get_origin(member) is tuple:
                raise TypeError(f"{members}: a tuple member cannot be told apart by its type")
            test = f"{v} is None" if member is types.NoneType else f"t is {self.cls(member)}"
            lines += [f"{'el' if i else ''}if {test}:", f"    out.append({i})"]
            lines += _indent(self.enc(member, v))
        lines += ["else:", f"    raise _not_a_member({v}, {self.bind(members, 'members')})"]
        return "\n".join(lines)

    def union_dec(self, members: tuple[Any, ...], t: str) -> str:
        lines = ["i = data[pos]", "pos += 1"]
        for i, member in enumerate(members):
            lines.append(f"{'el' if i else ''}if i == {i}:")
            lines += _indent(self.dec(member, t))
        lines += ["else:", '    raise DecodeError("invalid union member")']
        return "\n".join(lines)

    def cls(self, tp: type) -> str:
        """Source naming a class (builtins by their own name)."""
        return tp.__name__ if tp in _BUILTIN_TYPES else self.bind(tp, tp.__name__)

    def literal(self, value: Any) -> str:
        """Source for a default value: a literal where it is one, else a bound name."""
        if type(value) in _LITERAL_TYPES or (type(value) is tuple and not value):
            return repr(value)
        return self.bind(value, "default")

    def is_default(self, v: str, default: Any) -> str:
        """Source that is true iff the local ``v`` equals ``default`` and is of its type."""
        if default is None or type(default) is bool or isinstance(default, IntEnum):
            return f"{v} is {self.literal(default)}"  # singletons
        return f"type({v}) is {self.cls(type(default))} and {v} == {self.literal(default)}"

    def build(self, roots: tuple[type, ...]) -> None:
        for tp in roots:
            self.ref(tp)
        while self.todo:
            tp = self.todo.pop(0)
            if _kind(tp) == "record":
                self.record(tp)
            else:
                self.tuple_(tp)
        self.source = "\n".join(self.lines).replace("\ndef ", "\n\n\ndef ") + "\n"
        filename = "<raftkv.state.codec: generated>"  # tracebacks show the generated lines
        linecache.cache[filename] = (len(self.source), None,
                                     self.source.splitlines(keepends=True), filename)  # fmt: skip
        exec(compile(self.source, filename, "exec"), self.ns)

    def encoder(self, tp: Any) -> _Enc:
        enc: _Enc = self.ns[f"_e_{self.names[tp]}"]
        return enc

    def decoder(self, tp: Any) -> _Dec:
        dec: _Dec = self.ns[f"_d_{self.names[tp]}"]
        return dec

    def record(self, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        fields = [(f, hints[f.name]) for f in dataclasses.fields(cls)]
        if len(fields) >= 0x80:
            raise TypeError(f"{cls.__name__}: too many fields for a one-byte count")
        required = max((i + 1 for i, (f, _) in enumerate(fields) if f.default is _MISSING),
                       default=0)  # fmt: skip
        x = self.bind(cls, cls.__name__)
        self.lines += [f"def _e_{self.names[cls]}(out, value):",
                       f"    if type(value) is not {x}:",
                       f"        raise _wrong_type({x}.__name__, value)"]  # fmt: skip
        self.lines += [f"    f{i} = value.{f.name}" for i, (f, _) in enumerate(fields)]
        self.lines += _indent(self.field_count(fields, required))
        for i, (_, tp) in enumerate(fields):
            if i < required:
                self.lines += _indent(self.enc(tp, f"f{i}"))
            else:
                self.lines.append(f"    if n > {i}:")
                self.lines += _indent(self.enc(tp, f"f{i}"), 2)
        self.record_decoder(cls, fields, required)

    def field_count(self, fields: _Fields, required: int) -> str:
        """Source that sets and writes ``n``: the fields up to the last that is not its
        default (or the last required one)."""
        chain = [
            f"if not ({self.is_default(f'f{i}', f.default)}):\n    n = {i + 1}"
            for i, (f, _) in reversed(list(enumerate(fields)))
            if i >= required
        ]
        if not chain:
            return f"out.append({required})"
        return "\nel".join(chain) + f"\nelse:\n    n = {required}\nout.append(n)"

    def record_decoder(self, cls: type, fields: _Fields, required: int) -> None:
        known, x = len(fields), self.cls(cls)
        ok = f"{required} <= n <= {known}" if required else f"n <= {known}"
        self.lines += [f"def _d_{self.names[cls]}(data, pos):",
                       "    n = data[pos]",
                       "    pos += 1",
                       f"    if not {ok}:",
                       f"        raise _bad_count({x}, data, pos - 1, {known})"]  # fmt: skip
        for i, (f, tp) in enumerate(fields):
            if i < required:
                self.lines += _indent(self.dec(tp, f"a{i}"))
            else:
                self.lines.append(f"    if n > {i}:")
                self.lines += _indent(self.dec(tp, f"a{i}"), 2)
                self.lines += ["    else:", f"        a{i} = {self.literal(f.default)}"]
        self.lines += _indent(self.construct(cls, [f"a{i}" for i in range(known)]))
        self.lines.append("    return o, pos")

    def construct(self, cls: type, args: list[str]) -> str:
        """Source that sets ``o`` to a ``cls`` with the field values ``args``."""
        fields = dataclasses.fields(cls)
        shadow = _shadow(cls)
        if shadow is None:
            kwargs = ", ".join(f"{f.name}={a}" for f, a in zip(fields, args, strict=True))
            return f"o = {self.cls(cls)}({kwargs})"
        stores = [f"o.{f.name} = {a}" for f, a in zip(fields, args, strict=True)]
        return "\n".join([f"o = _new({self.bind(shadow, shadow.__name__)})", *stores,
                          f"o.__class__ = {self.cls(cls)}"])  # fmt: skip

    def tuple_(self, tp: Any) -> None:
        name, (item, _) = self.names[tp], typing.get_args(tp)
        self.lines += [f"def _e_{name}(out, value):",
                       "    if type(value) is not tuple:",
                       '        raise _wrong_type("a tuple", value)',
                       "    n = len(value)"]  # fmt: skip
        self.lines += _indent(_ENC_COUNT.format(v="n"))
        self.lines.append("    for item in value:")
        self.lines += _indent(self.enc(item, "item"), 2)
        self.lines.append(f"def _d_{name}(data, pos):")
        self.lines += _indent(_DEC_COUNT.format(t="n"))
        self.lines += ["    if not n:",
                       "        return (), pos",
                       "    if n > len(data) - pos:  # every item takes at least one byte",
                       '        raise DecodeError("tuple longer than input")',
                       "    items = []",
                       "    for _ in range(n):"]  # fmt: skip
        self.lines += _indent(self.dec(item, "item"), 2)
        self.lines += ["        items.append(item)", "    return tuple(items), pos"]


def _indent(block: str, depth: int = 1) -> list[str]:
    return ["    " * depth + line for line in block.splitlines()]


def _kind(tp: Any) -> str:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "record"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return "tuple"
    if origin in (types.UnionType, typing.Union):
        return "union"
    raise TypeError(f"no codec for {tp!r}")


def _is_wide(enum_type: type[IntEnum]) -> bool:
    """Whether some value of the enum does not fit in a one-byte uvarint."""
    return any(not 0 <= member < 0x80 for member in enum_type)


def _shadow(cls: type) -> type | None:
    """A plain class with the slots of the record ``cls``, or None if it cannot stand in.

    Decoding fills an instance of the shadow with plain attribute stores, then sets its
    ``__class__`` to ``cls``: the object ``cls(...)`` would make, without the call to its
    ``__init__`` (which stores each field of a frozen class through ``object.__setattr__``
    or a slot descriptor, two to four times slower). This assumes that ``__init__`` only
    stores the fields, as a dataclass's does; it is used for slotted dataclasses directly
    below ``object`` that take every field in ``__init__`` and have no ``__post_init__`` (every
    type of :mod:`~raftkv.state.commands`). CPython allows the ``__class__`` assignment
    between two such classes with the same slots; it is tried here once.
    """
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    if (
        cls.__bases__ != (object,)
        or hasattr(cls, "__post_init__")
        or not all(f.init for f in fields)
        or cls.__dict__.get("__slots__") != names
    ):
        return None
    shadow = type(f"{cls.__name__}Fields", (), {"__slots__": names})
    probe: Any = object.__new__(shadow)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return shadow


_GEN = _Generator()
_GEN.build(_TYPES)


def _generated_source() -> str:
    """The source of the generated functions, for reading and debugging."""
    return _GEN.source


def _prefix(tag: int) -> bytes:
    out = bytearray([FORMAT_VERSION])
    _put_uvarint(out, tag)
    return bytes(out)


_ENCODERS: dict[type, tuple[bytes, _Enc]] = {
    t: (_prefix(tag), _GEN.encoder(t)) for t, tag in _TAG_OF.items()
}
_DECODERS: tuple[_Dec, ...] = tuple(_GEN.decoder(t) for t in _TYPES)


def encode(value: object) -> bytes:
    """Encode one value of a type of :mod:`raftkv.state.commands`.

    Raises:
        TypeError: the value (or a field of it) is not of an encodable type, or an int is
            outside the int64 range.
    """
    entry = _ENCODERS.get(type(value))
    if entry is None:
        raise TypeError(f"cannot encode {type(value).__name__}")
    out = bytearray(entry[0])
    entry[1](out, value)
    return bytes(out)


def _decode_checked(data: bytes, expected: type | tuple[type, ...]) -> Any:
    if type(data) is not bytes:
        data = bytes(data)
    try:
        if data[0] != FORMAT_VERSION:
            raise DecodeError("unknown format version")
        tag, pos = data[1], 2
        if tag >= 0x80:
            tag, pos = _uvarint(data, 1)
        if tag >= len(_DECODERS):
            raise DecodeError(f"unknown type tag {tag}")
        value, pos = _DECODERS[tag](data, pos)
    except IndexError as exc:  # read past the end of the input
        raise DecodeError("truncated input") from exc
    except RecursionError as exc:
        raise DecodeError("nested too deeply") from exc
    if pos != len(data):
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
    value: T = _decode_checked(data, expected)
    return value


_REQUEST_PREFIX, _encode_request_fields = _ENCODERS[c.Request]


def encode_request(request: c.Request) -> bytes:
    """Encode a :class:`~raftkv.state.commands.Request` for a Raft log entry."""
    if type(request) is not c.Request:
        return encode(request)
    out = bytearray(_REQUEST_PREFIX)
    _encode_request_fields(out, request)
    return bytes(out)


def decode_request(data: bytes) -> c.Request:
    """Decode a log entry written by :func:`encode_request`."""
    value: c.Request = _decode_checked(data, c.Request)
    return value


_RESPONSE_TYPES: tuple[type, ...] = typing.get_args(c.Response)


def encode_response(response: c.Response) -> bytes:
    """Encode the result of applying a command (stored for de-duplication)."""
    return encode(response)


def decode_response(data: bytes) -> c.Response:
    """Decode :func:`encode_response`."""
    value: c.Response = _decode_checked(data, _RESPONSE_TYPES)
    return value
