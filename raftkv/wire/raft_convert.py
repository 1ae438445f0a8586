"""Conversions between the Raft core's value types and the peer protocol ``raftkv.raft.v1``.

This is the hot path of replication: every message a member sends to a peer passes through
:func:`batch_to_pb` and every message it receives through :func:`batch_from_pb`. The code is
therefore written for speed rather than symmetry:

- a message is built with one keyword constructor call, and inside a batch it is built in
  place (``batch.messages.add(...)``): appending a finished message would copy it, entries and
  all;
- entries travel column by column (:class:`raft_pb2.Entries`), so each column is converted
  with one list comprehension and one C call, and decoding is ``map(Entry, ...)`` over the
  four columns;
- enums map through dicts built once, never by integer coincidence; the tables are checked
  complete against the core's enums at import.

Errors come in two kinds, as in h11: a caller that misuses the API (a local-only message, a
snapshot inside a batch, a chunk size of 0) gets a plain :class:`ValueError`; bytes from a peer
that do not form a valid message raise :class:`WireFormatError` (and its subclass
:class:`SnapshotStreamError` for chunk streams), which a servicer answers with
``INVALID_ARGUMENT`` instead of stepping anything.

Snapshots never travel inside a :class:`raft_pb2.Message`. A SNAP message is sent with
:func:`snapshot_message_to_chunks` on ``Raft/SendSnapshot`` and rebuilt on the receiver with
:class:`SnapshotAssembler` (or :func:`snapshot_message_from_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from raftkv.raft.types import (
    LOCAL_MESSAGES,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
)
from raftkv.wire.pb.raftpb import raft_pb2

__all__ = [
    "CLUSTER_TOKEN_METADATA_KEY",
    "FROM_METADATA_KEY",
    "PROTOCOL_VERSION",
    "TO_METADATA_KEY",
    "PeerHeader",
    "SnapshotAssembler",
    "SnapshotStreamError",
    "WireFormatError",
    "batch_from_pb",
    "batch_to_pb",
    "check_hello",
    "conf_state_from_pb",
    "conf_state_to_pb",
    "entries_from_pb",
    "entries_to_pb",
    "entry_from_pb",
    "entry_to_pb",
    "message_from_pb",
    "message_to_pb",
    "peer_header_from_metadata",
    "peer_metadata",
    "snapshot_from_chunks",
    "snapshot_message_from_chunks",
    "snapshot_message_to_chunks",
    "snapshot_meta_from_pb",
    "snapshot_meta_to_pb",
    "snapshot_to_chunks",
]

PROTOCOL_VERSION = 1
"""Version of the peer protocol spoken by this code, exchanged in ``Raft/Hello``."""

CLUSTER_TOKEN_METADATA_KEY = "raftkv-cluster-token"
FROM_METADATA_KEY = "raftkv-from"
TO_METADATA_KEY = "raftkv-to"
"""gRPC metadata keys that identify the sender on ``Raft/Stream`` and ``Raft/SendSnapshot``."""


class WireFormatError(ValueError):
    """A peer sent bytes that do not form a valid message of the peer protocol."""


class SnapshotStreamError(WireFormatError):
    """A stream of snapshot chunks is malformed or truncated."""


# --------------------------------------------------------------------------------------
# enum tables

_MT = MessageType
_MESSAGE_TYPE_TO_PB: dict[MessageType, raft_pb2.MessageType] = {
    _MT.PROP: raft_pb2.MESSAGE_TYPE_PROP,
    _MT.APP: raft_pb2.MESSAGE_TYPE_APP,
    _MT.APP_RESP: raft_pb2.MESSAGE_TYPE_APP_RESP,
    _MT.VOTE: raft_pb2.MESSAGE_TYPE_VOTE,
    _MT.VOTE_RESP: raft_pb2.MESSAGE_TYPE_VOTE_RESP,
    _MT.SNAP: raft_pb2.MESSAGE_TYPE_SNAP,
    _MT.HEARTBEAT: raft_pb2.MESSAGE_TYPE_HEARTBEAT,
    _MT.HEARTBEAT_RESP: raft_pb2.MESSAGE_TYPE_HEARTBEAT_RESP,
    _MT.TRANSFER_LEADER: raft_pb2.MESSAGE_TYPE_TRANSFER_LEADER,
    _MT.TIMEOUT_NOW: raft_pb2.MESSAGE_TYPE_TIMEOUT_NOW,
    _MT.READ_INDEX: raft_pb2.MESSAGE_TYPE_READ_INDEX,
    _MT.READ_INDEX_RESP: raft_pb2.MESSAGE_TYPE_READ_INDEX_RESP,
    _MT.PRE_VOTE: raft_pb2.MESSAGE_TYPE_PRE_VOTE,
    _MT.PRE_VOTE_RESP: raft_pb2.MESSAGE_TYPE_PRE_VOTE_RESP,
}
_MESSAGE_TYPE_FROM_PB: dict[raft_pb2.MessageType, MessageType] = {
    v: k for k, v in _MESSAGE_TYPE_TO_PB.items()
}

_ENTRY_TYPE_TO_PB: dict[EntryType, raft_pb2.EntryType] = {
    EntryType.NORMAL: raft_pb2.ENTRY_TYPE_NORMAL,
    EntryType.CONF_CHANGE: raft_pb2.ENTRY_TYPE_CONF_CHANGE,
}
_ENTRY_TYPE_FROM_PB: dict[raft_pb2.EntryType, EntryType] = {
    v: k for k, v in _ENTRY_TYPE_TO_PB.items()
}


def _check_tables() -> None:
    """Fail at import if the core gained an enum value the wire cannot carry."""
    network = set(MessageType) - LOCAL_MESSAGES
    if set(_MESSAGE_TYPE_TO_PB) != network:
        raise RuntimeError(
            f"raft_convert: message types without a wire value: "
            f"{sorted(t.name for t in network ^ set(_MESSAGE_TYPE_TO_PB))}"
        )
    if set(_ENTRY_TYPE_TO_PB) != set(EntryType):
        raise RuntimeError("raft_convert: the entry type table does not cover EntryType")
    pb_message_types = set(raft_pb2.MessageType.values()) - {raft_pb2.MESSAGE_TYPE_UNSPECIFIED}
    if set(_MESSAGE_TYPE_FROM_PB) != pb_message_types:
        raise RuntimeError("raft_convert: the message type table does not cover raft.proto")
    if set(_ENTRY_TYPE_FROM_PB) != set(raft_pb2.EntryType.values()):
        raise RuntimeError("raft_convert: the entry type table does not cover raft.proto")


_check_tables()


def _message_type_to_pb(t: MessageType) -> raft_pb2.MessageType:
    try:
        return _MESSAGE_TYPE_TO_PB[t]
    except KeyError:
        raise ValueError(f"{t.name} is local-only; it never crosses the network") from None


# --------------------------------------------------------------------------------------
# entries


def entry_to_pb(e: Entry) -> raft_pb2.Entry:
    """One entry as a standalone :class:`raft_pb2.Entry`."""
    return raft_pb2.Entry(term=e.term, index=e.index, type=_ENTRY_TYPE_TO_PB[e.type], data=e.data)


def entry_from_pb(p: raft_pb2.Entry) -> Entry:
    """Inverse of :func:`entry_to_pb`. Raises :class:`WireFormatError` on an unknown type."""
    try:
        kind = _ENTRY_TYPE_FROM_PB[p.type]
    except KeyError:
        raise WireFormatError(f"entry {p.index}: unknown entry type {p.type}") from None
    return Entry(p.term, p.index, kind, p.data)


def _fill_entries(out: raft_pb2.Entries, entries: Sequence[Entry]) -> None:
    """Append ``entries`` to the columns of ``out`` (in place: no copy of the data)."""
    types = _ENTRY_TYPE_TO_PB
    out.term.extend([e.term for e in entries])
    out.index.extend([e.index for e in entries])
    out.type.extend([types[e.type] for e in entries])
    out.data.extend([e.data for e in entries])


def entries_to_pb(entries: Sequence[Entry]) -> raft_pb2.Entries:
    """Entries in the columnar form that :class:`raft_pb2.Message` carries."""
    out = raft_pb2.Entries()
    _fill_entries(out, entries)
    return out


def entries_from_pb(p: raft_pb2.Entries) -> tuple[Entry, ...]:
    """Inverse of :func:`entries_to_pb`.

    Raises:
        WireFormatError: the columns differ in length, or a type is unknown.
    """
    terms, indexes, types, data = p.term, p.index, p.type, p.data
    n = len(terms)
    if len(indexes) != n or len(types) != n or len(data) != n:
        raise WireFormatError(
            f"entry columns differ in length: {n} terms, {len(indexes)} indexes, "
            f"{len(types)} types, {len(data)} data"
        )
    try:
        return tuple(map(Entry, terms, indexes, map(_ENTRY_TYPE_FROM_PB.__getitem__, types), data))
    except KeyError as exc:
        raise WireFormatError(f"unknown entry type {exc.args[0]}") from None


# --------------------------------------------------------------------------------------
# membership and snapshot metadata


def conf_state_to_pb(cs: ConfState) -> raft_pb2.ConfState:
    """Voters and learners, each sorted (so equal states encode to equal bytes)."""
    return raft_pb2.ConfState(voters=sorted(cs.voters), learners=sorted(cs.learners))


def conf_state_from_pb(p: raft_pb2.ConfState) -> ConfState:
    """Inverse of :func:`conf_state_to_pb`. Raises :class:`WireFormatError` on overlap."""
    voters, learners = frozenset(p.voters), frozenset(p.learners)
    if voters & learners:
        raise WireFormatError(f"conf state: {sorted(voters & learners)} both voter and learner")
    return ConfState(voters, learners)


def snapshot_meta_to_pb(meta: SnapshotMeta) -> raft_pb2.SnapshotMeta:
    return raft_pb2.SnapshotMeta(
        index=meta.index, term=meta.term, conf_state=conf_state_to_pb(meta.conf_state)
    )


def snapshot_meta_from_pb(p: raft_pb2.SnapshotMeta) -> SnapshotMeta:
    return SnapshotMeta(p.index, p.term, conf_state_from_pb(p.conf_state))


# --------------------------------------------------------------------------------------
# messages


def _encode(factory: Any, m: Message) -> raft_pb2.Message:
    """Build the protobuf form of ``m`` with ``factory`` (a class, or a repeated field's add)."""
    snap = m.snapshot
    if snap is None:
        if m.type is _MT.SNAP:
            raise ValueError("a SNAP message must carry a snapshot")
        p: raft_pb2.Message = factory(
            type=_message_type_to_pb(m.type),
            to=m.to,
            frm=m.frm,
            term=m.term,
            log_term=m.log_term,
            index=m.index,
            commit=m.commit,
            reject=m.reject,
            reject_hint=m.reject_hint,
            context=m.context,
        )
    else:
        if m.type is not _MT.SNAP:
            raise ValueError(f"only SNAP messages carry a snapshot, not {m.type.name}")
        p = factory(
            type=raft_pb2.MESSAGE_TYPE_SNAP,
            to=m.to,
            frm=m.frm,
            term=m.term,
            log_term=m.log_term,
            index=m.index,
            commit=m.commit,
            reject=m.reject,
            reject_hint=m.reject_hint,
            context=m.context,
            snapshot=snapshot_meta_to_pb(snap.meta),
        )
    if m.entries:
        _fill_entries(p.entries, m.entries)
    return p


def message_to_pb(m: Message) -> raft_pb2.Message:
    """The wire form of ``m``. A SNAP message keeps only its snapshot's metadata.

    Raises:
        ValueError: ``m`` is a local-only message type, a SNAP message without a snapshot,
            or another type with one.
    """
    return _encode(raft_pb2.Message, m)


def message_from_pb(p: raft_pb2.Message, *, snapshot_data: bytes | None = None) -> Message:
    """The core message that ``p`` encodes.

    Args:
        p: a message received from a peer.
        snapshot_data: for a SNAP message only, the snapshot's data, which never travels
            inside a Message (it came on ``Raft/SendSnapshot``).

    Raises:
        WireFormatError: the type is missing, unknown or local-only; an entry is malformed;
            a SNAP message lacks its metadata or ``snapshot_data`` (a SNAP message decoded
            without its data would install an empty state machine).
        ValueError: ``snapshot_data`` was given for a message that is not SNAP.
    """
    try:
        mt = _MESSAGE_TYPE_FROM_PB[p.type]
    except KeyError:
        raise WireFormatError(f"message type {p.type} is missing or unknown") from None
    entries = entries_from_pb(p.entries) if p.HasField("entries") else ()
    snapshot = None
    if mt is _MT.SNAP:
        if snapshot_data is None:
            raise WireFormatError("a SNAP message arrived without its data (use SendSnapshot)")
        if not p.HasField("snapshot"):
            raise WireFormatError("a SNAP message arrived without snapshot metadata")
        snapshot = Snapshot(snapshot_meta_from_pb(p.snapshot), snapshot_data)
    elif snapshot_data is not None:
        raise ValueError(f"snapshot_data given for a {mt.name} message")
    return Message(
        mt,
        p.to,
        p.frm,
        p.term,
        p.log_term,
        p.index,
        entries,
        p.commit,
        p.reject,
        p.reject_hint,
        snapshot,
        p.context,
    )


def batch_to_pb(messages: Iterable[Message]) -> raft_pb2.MessageBatch:
    """One :class:`raft_pb2.MessageBatch` for ``Raft/Stream``, each message built in place.

    Raises:
        ValueError: a message is local-only, or is SNAP (snapshots go on SendSnapshot).
    """
    batch = raft_pb2.MessageBatch()
    add = batch.messages.add
    for m in messages:
        if m.type is _MT.SNAP:
            raise ValueError("SNAP messages go on SendSnapshot, not in a MessageBatch")
        _encode(add, m)
    return batch


def batch_from_pb(batch: raft_pb2.MessageBatch) -> list[Message]:
    """The messages of a batch received on ``Raft/Stream``, in order.

    Raises:
        WireFormatError: a message is malformed, local-only, or SNAP.
    """
    return [message_from_pb(p) for p in batch.messages]


# --------------------------------------------------------------------------------------
# snapshots


def snapshot_to_chunks(
    snapshot: Snapshot,
    chunk_size: int,
    *,
    frm: int = 0,
    to: int = 0,
    term: int = 0,
    cluster_token: str = "",
) -> Iterator[raft_pb2.SnapshotChunk]:
    """Split ``snapshot`` into chunks of at most ``chunk_size`` data bytes.

    The first chunk carries the metadata, offsets are contiguous, and the final chunk has
    ``last`` set; an empty snapshot is one chunk. Every chunk carries ``frm``, ``to``,
    ``term`` and ``cluster_token``. Chunks are produced lazily, one slice of the data at a
    time, but the arguments are checked at the call.

    Raises:
        ValueError: ``chunk_size`` is not positive.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return _chunks(snapshot, chunk_size, frm, to, term, cluster_token)


def _chunks(
    snapshot: Snapshot, chunk_size: int, frm: int, to: int, term: int, cluster_token: str
) -> Iterator[raft_pb2.SnapshotChunk]:
    data = snapshot.data
    size = len(data)
    end = min(chunk_size, size)
    yield raft_pb2.SnapshotChunk(
        meta=snapshot_meta_to_pb(snapshot.meta),
        data=data[:end],
        offset=0,
        last=end == size,
        frm=frm,
        to=to,
        term=term,
        cluster_token=cluster_token,
    )
    for offset in range(end, size, chunk_size):
        end = min(offset + chunk_size, size)
        yield raft_pb2.SnapshotChunk(
            data=data[offset:end],
            offset=offset,
            last=end == size,
            frm=frm,
            to=to,
            term=term,
            cluster_token=cluster_token,
        )


def snapshot_message_to_chunks(
    m: Message, chunk_size: int, *, cluster_token: str = ""
) -> Iterator[raft_pb2.SnapshotChunk]:
    """The chunks that carry the SNAP message ``m`` on ``Raft/SendSnapshot``.

    A SNAP message is fully described by ``frm``, ``to``, ``term`` and its snapshot, which
    is what the chunks carry.

    Raises:
        ValueError: ``m`` is not a SNAP message with a snapshot, or ``chunk_size`` < 1.
    """
    if m.type is not _MT.SNAP or m.snapshot is None:
        raise ValueError(f"expected a SNAP message with a snapshot, got {m.type.name}")
    return snapshot_to_chunks(
        m.snapshot, chunk_size, frm=m.frm, to=m.to, term=m.term, cluster_token=cluster_token
    )


@dataclass(frozen=True, slots=True)
class _Header:
    frm: int
    to: int
    term: int
    cluster_token: str
    meta: SnapshotMeta


class SnapshotAssembler:
    """Rebuilds a snapshot from the chunks of one ``Raft/SendSnapshot`` stream.

    Feed chunks in arrival order with :meth:`add`; it returns True once the last chunk is in.
    The header (:attr:`frm`, :attr:`to`, :attr:`term`, :attr:`cluster_token`) is known after
    the first chunk, so a servicer can refuse a stream early, before buffering its data.

    Invariants: the first chunk carries ``meta`` and no later one does; chunk offsets are
    contiguous from 0; every chunk repeats the first chunk's frm, to, term and cluster
    token; nothing follows the chunk with ``last`` set. Any violation raises
    :class:`SnapshotStreamError` and the assembler must then be discarded.
    """

    __slots__ = ("_chunks", "_done", "_header", "_max_bytes", "_parts", "_size")

    def __init__(self, *, max_bytes: int | None = None) -> None:
        """Args: max_bytes: refuse a snapshot whose data would exceed this many bytes."""
        self._max_bytes = max_bytes
        self._header: _Header | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._chunks = 0
        self._done = False

    def add(self, chunk: raft_pb2.SnapshotChunk) -> bool:
        """Take the next chunk; True when it was the last one.

        Raises:
            SnapshotStreamError: the chunk does not continue the stream correctly.
        """
        n = self._chunks
        if self._done:
            raise SnapshotStreamError(f"chunk {n} arrived after the last chunk")
        header = self._header
        if header is None:
            if not chunk.HasField("meta"):
                raise SnapshotStreamError("the first chunk carries no snapshot metadata")
            header = self._header = _Header(
                chunk.frm,
                chunk.to,
                chunk.term,
                chunk.cluster_token,
                snapshot_meta_from_pb(chunk.meta),
            )
        else:
            if chunk.HasField("meta"):
                raise SnapshotStreamError(f"chunk {n} carries metadata; only the first may")
            if (chunk.frm, chunk.to, chunk.term, chunk.cluster_token) != (
                header.frm,
                header.to,
                header.term,
                header.cluster_token,
            ):
                raise SnapshotStreamError(
                    f"chunk {n} has frm/to/term/cluster_token "
                    f"{chunk.frm}/{chunk.to}/{chunk.term}/{chunk.cluster_token!r}, the first "
                    f"had {header.frm}/{header.to}/{header.term}/{header.cluster_token!r}"
                )
        if chunk.offset != self._size:
            raise SnapshotStreamError(
                f"chunk {n} has offset {chunk.offset}, expected {self._size} "
                "(a chunk is missing, repeated or out of order)"
            )
        data = chunk.data
        size = self._size + len(data)
        if self._max_bytes is not None and size > self._max_bytes:
            raise SnapshotStreamError(f"snapshot exceeds {self._max_bytes} bytes")
        if data:
            self._parts.append(data)
        self._size = size
        self._chunks = n + 1
        self._done = chunk.last
        return self._done

    @property
    def done(self) -> bool:
        """Whether the last chunk has been received."""
        return self._done

    @property
    def received_bytes(self) -> int:
        return self._size

    def _require_header(self) -> _Header:
        if self._header is None:
            raise SnapshotStreamError("no chunk received")
        return self._header

    @property
    def frm(self) -> int:
        return self._require_header().frm

    @property
    def to(self) -> int:
        return self._require_header().to

    @property
    def term(self) -> int:
        return self._require_header().term

    @property
    def cluster_token(self) -> str:
        return self._require_header().cluster_token

    def snapshot(self) -> Snapshot:
        """The reassembled snapshot.

        Raises:
            SnapshotStreamError: no chunk arrived, or the stream ended before the last one.
        """
        header = self._require_header()
        if not self._done:
            raise SnapshotStreamError(
                f"the stream ended before the last chunk ({self._chunks} chunks, "
                f"{self._size} bytes received)"
            )
        return Snapshot(header.meta, b"".join(self._parts))

    def message(self) -> Message:
        """The SNAP message that the chunks carried (see :func:`snapshot_message_to_chunks`)."""
        snapshot = self.snapshot()
        header = self._require_header()
        return Message(_MT.SNAP, to=header.to, frm=header.frm, term=header.term, snapshot=snapshot)


def snapshot_from_chunks(
    chunks: Iterable[raft_pb2.SnapshotChunk], *, max_bytes: int | None = None
) -> Snapshot:
    """Reassemble a snapshot from a complete chunk stream (see :class:`SnapshotAssembler`).

    Raises:
        SnapshotStreamError: the stream is empty, malformed or truncated.
    """
    assembler = SnapshotAssembler(max_bytes=max_bytes)
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.snapshot()


def snapshot_message_from_chunks(
    chunks: Iterable[raft_pb2.SnapshotChunk], *, max_bytes: int | None = None
) -> Message:
    """Like :func:`snapshot_from_chunks`, but the whole SNAP message."""
    assembler = SnapshotAssembler(max_bytes=max_bytes)
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.message()


# --------------------------------------------------------------------------------------
# peer identity: Hello and stream metadata


def check_hello(
    request: raft_pb2.HelloRequest, *, cluster_token: str, member_id: int, cluster_id: int = 0
) -> raft_pb2.HelloResponse:
    """Answer a peer's Hello: accept it only if it is of this cluster and dialled this member.

    Args:
        request: the peer's Hello.
        cluster_token: this member's cluster token.
        member_id: this member's id.
        cluster_id: this member's cluster id, returned to an accepted peer (a member joining
            a running cluster adopts it).
    """
    reason = ""
    if request.cluster_token != cluster_token:
        reason = (
            f"cluster token mismatch: member {member_id} is in cluster {cluster_token!r}, "
            f"the peer in {request.cluster_token!r}"
        )
    elif request.to != member_id:
        reason = f"the peer dialled member {request.to}, this is member {member_id}"
    elif request.frm == member_id:
        reason = f"the peer claims this member's own id {member_id}"
    elif request.protocol_version != PROTOCOL_VERSION:
        reason = (
            f"protocol version {request.protocol_version} is not supported "
            f"(this member speaks {PROTOCOL_VERSION})"
        )
    return raft_pb2.HelloResponse(
        accepted=not reason,
        reason=reason,
        member_id=member_id,
        protocol_version=PROTOCOL_VERSION,
        cluster_id=cluster_id if not reason else 0,
    )


@dataclass(frozen=True, slots=True)
class PeerHeader:
    """Who opened a ``Raft/Stream`` or ``Raft/SendSnapshot`` call, from its metadata."""

    cluster_token: str
    frm: int
    to: int


def peer_metadata(cluster_token: str, frm: int, to: int) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata a member sends when it opens a stream to peer ``to``."""
    return (
        (CLUSTER_TOKEN_METADATA_KEY, cluster_token),
        (FROM_METADATA_KEY, str(frm)),
        (TO_METADATA_KEY, str(to)),
    )


def peer_header_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> PeerHeader:
    """Inverse of :func:`peer_metadata` (for ``context.invocation_metadata()``).

    Raises:
        WireFormatError: a key is missing or an id is not a non-negative integer.
    """
    values = {k: v for k, v in metadata if isinstance(v, str)}
    missing = [
        k
        for k in (CLUSTER_TOKEN_METADATA_KEY, FROM_METADATA_KEY, TO_METADATA_KEY)
        if k not in values
    ]
    if missing:
        raise WireFormatError(f"peer metadata lacks {', '.join(missing)}")
    ids = []
    for key in (FROM_METADATA_KEY, TO_METADATA_KEY):
        text = values[key]
        if not (text.isascii() and text.isdigit()):
            raise WireFormatError(f"peer metadata {key}={text!r} is not a member id")
        ids.append(int(text))
    return PeerHeader(values[CLUSTER_TOKEN_METADATA_KEY], ids[0], ids[1])
