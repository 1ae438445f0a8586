"""`RawNode`: the facade the application drives. Ticks and messages in, a `Ready` out.

The application loop (see ``raftkv.server`` and ``chaos.sim``)::

    while True:
        feed ticks (node.tick()) and network messages (node.step(m)), proposals, reads
        if node.has_ready():
            rd = node.ready()
            send(rd.messages_now)                      # may go before the fsync
            persist(rd.snapshot, rd.entries, rd.hard_state)   # one durable write
            send(rd.messages_after_persist)
            apply(rd.committed_entries); serve(rd.read_states)
            node.advance(rd)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftkv.raft import _leader
from raftkv.raft.config import Config
from raftkv.raft.core import Raft
from raftkv.raft.errors import ProposalDropped, RaftInvariantError
from raftkv.raft.progress import ProgressState
from raftkv.raft.storage import LogStorage
from raftkv.raft.types import (
    LOCAL_MESSAGES,
    NONE,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateRole,
)

MT = MessageType


@dataclass(frozen=True, slots=True)
class Ready:
    """What the application must do next, in order.

    Attributes:
        soft_state: the new leader/role if it changed, else None.
        hard_state: the hard state to persist if it changed, else None.
        entries: entries to append to storage (may overwrite a conflicting suffix).
        snapshot: a snapshot received from the leader to install first, else None.
        committed_entries: entries to apply to the state machine, after persisting.
        messages_now: messages that may be sent before persisting (the leader's appends
            and heartbeats: replication runs in parallel with the leader's fsync).
        messages_after_persist: messages to send only once the above is durable.
        read_states: linearizable reads that may be served once applied >= index.
        must_sync: whether the write must be fsynced (term, vote or entries changed).
    """

    soft_state: SoftState | None
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    committed_entries: tuple[Entry, ...]
    messages_now: tuple[Message, ...]
    messages_after_persist: tuple[Message, ...]
    read_states: tuple[ReadState, ...]
    must_sync: bool


@dataclass(frozen=True, slots=True)
class PeerStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of a node's state for monitoring and for learner-readiness decisions."""

    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    last_index: int
    conf_state: ConfState
    lead_transferee: int
    progress: dict[int, PeerStatus] = field(default_factory=dict)


class RawNode:
    """The thread-unsafe, I/O-free facade over :class:`Raft`."""

    def __init__(self, cfg: Config, storage: LogStorage) -> None:
        self.raft = Raft(cfg, storage)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()

    # -- inputs ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance logical time by one tick."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (pre-vote first if enabled)."""
        self.raft.step(Message(type=MT.HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose ``data`` for the log. Raises :class:`ProposalDropped` if it cannot be."""
        self._propose(Entry(term=0, index=0, type=EntryType.NORMAL, data=data))

    def propose_batch(self, items: list[bytes]) -> None:
        """Propose several entries at once; they share one append (group commit)."""
        if items:
            entries = tuple(Entry(term=0, index=0, data=d) for d in items)
            self.raft.step(Message(type=MT.PROP, frm=self.raft.id, entries=entries))

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a single-server membership change; at most one may be pending."""
        self._propose(Entry(term=0, index=0, type=EntryType.CONF_CHANGE, data=cc.encode()))

    def _propose(self, e: Entry) -> None:
        self.raft.step(Message(type=MT.PROP, frm=self.raft.id, entries=(e,)))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed conf change entry; returns the new membership."""
        return self.raft.apply_conf_change(cc)

    def step(self, m: Message) -> None:
        """Deliver a message from the network. Local-only message types are refused."""
        if m.type in LOCAL_MESSAGES:
            raise RaftInvariantError(f"{m.type.name} must not come from the network")
        if m.frm not in self.raft.prs and m.type in (MT.APP_RESP, MT.HEARTBEAT_RESP):
            return  # a response from a node that is no longer a member
        try:
            self.raft.step(m)
        except ProposalDropped:
            if m.type not in (MT.PROP, MT.READ_INDEX, MT.TRANSFER_LEADER):
                raise
            # A forwarded proposal or read we cannot serve: the sender's client times out.

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read; a :class:`ReadState` with ``ctx`` comes back."""
        self.raft.step(Message(type=MT.READ_INDEX, frm=self.raft.id, context=ctx))

    def transfer_leader(self, transferee: int) -> None:
        """Ask the leader to hand leadership to ``transferee`` (dissertation §3.10)."""
        self.raft.step(Message(type=MT.TRANSFER_LEADER, frm=transferee))

    def report_unreachable(self, node_id: int) -> None:
        self._step_local(MT.UNREACHABLE, node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.raft.step(Message(type=MT.SNAP_STATUS, frm=node_id, reject=not ok))

    def _step_local(self, t: MessageType, frm: int) -> None:
        self.raft.step(Message(type=t, frm=frm))

    # -- output ----------------------------------------------------------------------------
    def has_ready(self) -> bool:
        r = self.raft
        r.flush_pending()
        return bool(
            r.msgs_now or r.msgs_after_persist or r.read_states
            or r.log.unstable.entries or r.log.unstable.snapshot is not None
            or r.log.has_next_committed_ents()
            or r.soft_state() != self._prev_soft
            or r.hard_state() != self._prev_hard)

    def ready(self) -> Ready:
        """Collect what to persist, send and apply. Call :meth:`advance` when done."""
        r = self.raft
        r.flush_pending()
        soft = r.soft_state()
        hard = r.hard_state()
        entries = tuple(r.log.unstable.entries)
        prev = self._prev_hard
        must_sync = bool(entries) or hard.term != prev.term or hard.vote != prev.vote
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != prev else None,
            entries=entries,
            snapshot=r.log.unstable.snapshot,
            committed_entries=tuple(r.log.next_committed_ents()),
            messages_now=tuple(r.msgs_now),
            messages_after_persist=tuple(r.msgs_after_persist),
            read_states=tuple(r.read_states),
            must_sync=must_sync or r.log.unstable.snapshot is not None,
        )
        r.msgs_now = []
        r.msgs_after_persist = []
        r.read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """Everything in ``rd`` was persisted, sent and applied."""
        r = self.raft
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.snapshot is not None:
            r.log.stable_snap_to(rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            r.log.stable_to(last.index, last.term)
            if r.role is StateRole.LEADER:
                _leader.on_persisted(r, last.index)
        if rd.committed_entries:
            r.log.applied_to(rd.committed_entries[-1].index)
            if r.role is StateRole.LEADER:
                done = sum(len(e.data) for e in rd.committed_entries)
                r.uncommitted_size = max(0, r.uncommitted_size - done)
        elif rd.snapshot is not None:
            r.log.applied_to(rd.snapshot.meta.index)

    # -- inspection ------------------------------------------------------------------------
    def status(self) -> Status:
        r = self.raft
        progress = {}
        if r.role is StateRole.LEADER:
            progress = {nid: PeerStatus(pr.match, pr.next, pr.state, pr.is_learner,
                                        pr.recent_active) for nid, pr in r.prs.items()}
        return Status(id=r.id, hard_state=r.hard_state(), soft_state=r.soft_state(),
                      applied=r.log.applied, last_index=r.log.last_index(),
                      conf_state=r.conf_state(), lead_transferee=r.lead_transferee,
                      progress=progress)

    @property
    def lead(self) -> int:
        return self.raft.lead if self.raft.lead != NONE else NONE
