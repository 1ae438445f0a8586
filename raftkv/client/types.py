"""Typed, frozen results of client calls, and their conversion from protobuf.

Keys and values are ``bytes``; every call that takes a key also accepts ``str`` (UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.mvccpb import kv_pb2

KeyLike = bytes | str


def to_bytes(value: KeyLike, what: str = "key") -> bytes:
    """``str`` as UTF-8; ``bytes`` as is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be bytes or str, got {type(value).__name__}")


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix`` (etcd's
    ``GetPrefixRangeEnd``; ``b"\\0"`` means every key when the prefix is empty or all 0xff)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


@dataclass(frozen=True, slots=True)
class Header:
    """``ResponseHeader``: who answered, and the store revision when it did."""

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

    @classmethod
    def from_pb(cls, h: rpc_pb2.ResponseHeader) -> Header:
        return cls(h.cluster_id, h.member_id, h.revision, h.raft_term)


@dataclass(frozen=True, slots=True)
class KeyValue:
    """``mvccpb.KeyValue``: a key's value and metadata.

    ``create_revision`` is the revision that created the key (a lock's fencing token);
    ``mod_revision`` the last one that changed it; ``version`` counts changes since creation;
    ``lease`` is the attached lease id (0: none).
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_pb(cls, kv: kv_pb2.KeyValue) -> KeyValue:
        return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


@dataclass(frozen=True, slots=True)
class RangeResponse:
    """A read: ``kvs`` in the requested order; ``count`` of matching keys (before
    ``limit``); ``more`` if ``limit`` cut the result."""

    header: Header
    kvs: tuple[KeyValue, ...]
    count: int
    more: bool

    @classmethod
    def from_pb(cls, r: rpc_pb2.RangeResponse) -> RangeResponse:
        return cls(Header.from_pb(r.header), tuple(KeyValue.from_pb(kv) for kv in r.kvs),
                   r.count, r.more)

    @property
    def revision(self) -> int:
        return self.header.revision


@dataclass(frozen=True, slots=True)
class PutResponse:
    """A put; ``prev_kv`` if asked for and the key existed."""

    header: Header
    prev_kv: KeyValue | None

    @classmethod
    def from_pb(cls, r: rpc_pb2.PutResponse) -> PutResponse:
        prev = KeyValue.from_pb(r.prev_kv) if r.HasField("prev_kv") else None
        return cls(Header.from_pb(r.header), prev)

    @property
    def revision(self) -> int:
        return self.header.revision


@dataclass(frozen=True, slots=True)
class DeleteResponse:
    """A delete: how many keys went, and their last values if asked for."""

    header: Header
    deleted: int
    prev_kvs: tuple[KeyValue, ...]

    @classmethod
    def from_pb(cls, r: rpc_pb2.DeleteRangeResponse) -> DeleteResponse:
        return cls(Header.from_pb(r.header), r.deleted,
                   tuple(KeyValue.from_pb(kv) for kv in r.prev_kvs))

    @property
    def revision(self) -> int:
        return self.header.revision


@dataclass(frozen=True, slots=True)
class TxnResponse:
    """A transaction: whether every compare held, and one response per op of the branch
    that ran, in order (a nested txn's is a :class:`TxnResponse`)."""

    header: Header
    succeeded: bool
    responses: tuple[RangeResponse | PutResponse | DeleteResponse | TxnResponse, ...]

    @classmethod
    def from_pb(cls, r: rpc_pb2.TxnResponse) -> TxnResponse:
        out: list[RangeResponse | PutResponse | DeleteResponse | TxnResponse] = []
        for op in r.responses:
            kind = op.WhichOneof("response")
            if kind == "response_range":
                out.append(RangeResponse.from_pb(op.response_range))
            elif kind == "response_put":
                out.append(PutResponse.from_pb(op.response_put))
            elif kind == "response_delete_range":
                out.append(DeleteResponse.from_pb(op.response_delete_range))
            else:
                out.append(TxnResponse.from_pb(op.response_txn))
        return cls(Header.from_pb(r.header), r.succeeded, tuple(out))

    @property
    def revision(self) -> int:
        return self.header.revision


OpResponse = RangeResponse | PutResponse | DeleteResponse | TxnResponse
"""The response of one op of a transaction."""


class EventType(Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    """One change seen by a watch. A DELETE's ``kv`` has only ``key`` and ``mod_revision``
    (the deletion's revision); ``prev_kv`` is set when the watch asked for it."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @classmethod
    def from_pb(cls, ev: kv_pb2.Event) -> Event:
        kind = EventType.DELETE if ev.type == kv_pb2.Event.DELETE else EventType.PUT
        prev = KeyValue.from_pb(ev.prev_kv) if ev.HasField("prev_kv") else None
        return cls(kind, KeyValue.from_pb(ev.kv), prev)

    @property
    def key(self) -> bytes:
        return self.kv.key

    @property
    def value(self) -> bytes:
        return self.kv.value

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """A granted lease: its id and the TTL the server granted (it may raise it)."""

    header: Header
    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    """``ttl`` seconds remain (-1: the lease does not exist) of ``granted_ttl``; ``keys``
    attached if asked for."""

    header: Header
    id: int
    ttl: int
    granted_ttl: int
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """A cluster member (``name`` is empty until a started member publishes it)."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_pb(cls, m: rpc_pb2.Member) -> Member:
        return cls(m.ID, m.name, tuple(m.peerURLs), tuple(m.clientURLs), m.isLearner)


@dataclass(frozen=True, slots=True)
class Status:
    """``Maintenance.Status`` of the member that answered."""

    header: Header
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    errors: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_pb(cls, r: rpc_pb2.StatusResponse) -> Status:
        return cls(Header.from_pb(r.header), r.version, r.dbSize, r.leader, r.raftIndex,
                   r.raftTerm, r.raftAppliedIndex, tuple(r.errors), r.isLearner)
