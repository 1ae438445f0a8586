"""Value types of the Raft core: entries, hard state, configuration, snapshots, messages.

Everything here is a frozen, slotted dataclass or an enum; the core never mutates a value it
has handed out. Index and term numbering follows the Raft paper: the first log entry has
index 1, term 0 means "no term", and node id 0 (:data:`NONE`) means "nobody".
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import NamedTuple, NewType

from raftkv._frozen import fast_init

NodeId = NewType("NodeId", int)
Term = NewType("Term", int)
Index = NewType("Index", int)

NONE = 0
"""The node id that means "no node" (no leader known, no vote cast)."""


class EntryType(enum.IntEnum):
    """What an entry's ``data`` holds."""

    NORMAL = 0
    """Application data (empty data marks a leader's no-op entry)."""
    CONF_CHANGE = 1
    """An encoded :class:`ConfChange`."""


class Entry(NamedTuple):
    """One log entry. ``index`` starts at 1; ``term`` is the leader's term when appended.

    A ``NamedTuple`` rather than a frozen dataclass: entries are created by the thousand on
    the replication hot path, and a tuple is about five times cheaper to build.
    """

    term: int
    index: int  # type: ignore[assignment]  # shadows tuple.index, which nobody needs here
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate payload size in bytes, used for flow control."""
        return len(self.data) + 16


@fast_init
@dataclass(frozen=True, slots=True)
class HardState:
    """The state that must be durable before a node speaks (Raft §5.1, Figure 2).

    ``commit`` is persisted for convenience (faster restart); losing it is safe.
    """

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        """True for the zero hard state of a node that never persisted anything."""
        return self.term == 0 and self.vote == NONE and self.commit == 0


class ConfChangeType(enum.IntEnum):
    """A single-server membership change (Raft dissertation §4.1)."""

    ADD_NODE = 0
    """Add a voter, or promote a learner to voter."""
    REMOVE_NODE = 1
    """Remove a voter or a learner."""
    ADD_LEARNER = 2
    """Add a learner: it receives the log but does not vote or count for commit."""


_CC = struct.Struct(">BQ")


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A membership change carried in a :attr:`EntryType.CONF_CHANGE` entry."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        """Encode as ``type (1 byte) | node id (8 bytes, big endian) | context``."""
        return _CC.pack(int(self.type), self.node_id) + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        """Inverse of :meth:`encode`. Raises ``ValueError`` on malformed data."""
        if len(data) < _CC.size:
            raise ValueError(f"conf change too short: {len(data)} bytes")
        kind, node_id = _CC.unpack_from(data)
        return cls(ConfChangeType(kind), node_id, bytes(data[_CC.size:]))


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership: voters and learners. The two sets are disjoint."""

    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()

    def contains(self, node_id: int) -> bool:
        """True if ``node_id`` is a voter or a learner."""
        return node_id in self.voters or node_id in self.learners


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot covers: everything up to and including ``index`` (of ``term``)."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state-machine snapshot with its metadata; ``data`` is opaque to the core."""

    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""

    def is_empty(self) -> bool:
        """True when this is the "no snapshot" value (index 0)."""
        return self.meta.index == 0


EMPTY_SNAPSHOT = Snapshot()


class MessageType(enum.IntEnum):
    """Message kinds. The ``LOCAL_*``-style ones never cross the network."""

    HUP = 0  # local: start an election
    BEAT = 1  # local: leader heartbeat tick
    PROP = 2  # proposal (local, or forwarded by a follower to the leader)
    APP = 3
    APP_RESP = 4
    VOTE = 5
    VOTE_RESP = 6
    SNAP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    UNREACHABLE = 10  # local: transport could not reach a peer
    SNAP_STATUS = 11  # local: the snapshot send finished (reject = failed)
    CHECK_QUORUM = 12  # local: leader checks it heard from a quorum
    TRANSFER_LEADER = 13
    TIMEOUT_NOW = 14
    READ_INDEX = 15
    READ_INDEX_RESP = 16
    PRE_VOTE = 17
    PRE_VOTE_RESP = 18


LOCAL_MESSAGES = frozenset(
    {MessageType.HUP, MessageType.BEAT, MessageType.UNREACHABLE,
     MessageType.SNAP_STATUS, MessageType.CHECK_QUORUM}
)
"""Message types that the application must never deliver from the network."""


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """A Raft message. Field meaning depends on ``type`` (as in etcd-io/raft's ``Message``).

    - ``index``/``log_term``: for APP, the entry preceding ``entries``; for votes, the
      candidate's last entry; for APP_RESP, the last index accepted (or the rejected index).
    - ``reject_hint``: on a rejected APP_RESP, the follower's hint for the next probe.
    - ``context``: read-index request context, or campaign kind for transfer votes.
    """

    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""


@fast_init
@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches ``index``."""

    index: int
    context: bytes


class StateRole(enum.Enum):
    """The role a node plays (Raft §5.1, plus the pre-candidate of dissertation §9.6)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@fast_init
@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the application may want to observe; not persisted."""

    lead: int = NONE
    role: StateRole = StateRole.FOLLOWER
