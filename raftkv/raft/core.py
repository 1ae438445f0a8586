"""The Raft state machine of one node: terms, roles, votes and message dispatch.

`Raft` holds the state and the handlers common to every role; the role-specific handlers
live in :mod:`._leader`, :mod:`._candidate` and :mod:`._follower`. Nothing here reads a
clock, touches I/O or starts a thread: time advances only through :meth:`Raft.tick`,
randomness comes only from ``Config.rng``. Section numbers cite the Raft paper (§) or
Ongaro's dissertation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace

from raftkv.raft import _candidate, _follower, _leader
from raftkv.raft.config import Config
from raftkv.raft.errors import RaftInvariantError
from raftkv.raft.log import RaftLog
from raftkv.raft.progress import Inflights, Progress
from raftkv.raft.quorum import VoteResult, vote_result
from raftkv.raft.read_only import ReadOnly
from raftkv.raft.storage import LogStorage
from raftkv.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    SoftState,
    StateRole,
)

CAMPAIGN_TRANSFER = b"CampaignTransfer"
"""Vote context marking an election forced by leadership transfer (skips stickiness)."""

MT = MessageType


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


SEND_NOW_FROM_LEADER = frozenset(
    {MT.APP, MT.HEARTBEAT, MT.SNAP, MT.TIMEOUT_NOW, MT.READ_INDEX_RESP})
"""Leader messages that depend on nothing unpersisted: the leader counts its own log only
once persisted (§10.2.1 of the dissertation), so they may leave before the fsync."""
FORWARDED = frozenset({MT.PROP, MT.READ_INDEX, MT.TRANSFER_LEADER})


def needs_persist(m: Message, role: StateRole) -> bool:
    """Must ``m`` wait until this Ready's hard state and entries are durable?

    Vote grants, append acknowledgements and anything else a follower or candidate says
    reflect its term, vote or log, so they leave only after the fsync (§5.1, Figure 2:
    "respond to RPCs ... after updating stable storage").
    """
    if m.type in FORWARDED:
        return False
    return not (role is StateRole.LEADER and m.type in SEND_NOW_FROM_LEADER)


class Raft:
    """One node's Raft state. Use it through :class:`raftkv.raft.rawnode.RawNode`."""

    def __init__(self, cfg: Config, storage: LogStorage) -> None:
        cfg.validate()
        self.cfg = cfg
        self.id = cfg.id
        self.rng = cfg.rng
        self.log = RaftLog(storage, cfg.max_committed_size_per_ready)
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.role = StateRole.FOLLOWER
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs_now: list[Message] = []
        self.msgs_after_persist: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_read_index_messages: list[Message] = []
        self.read_ctx_to_broadcast: bytes | None = None
        self.append_pending = False
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = cfg.election_ticks
        self._step: Callable[[Raft, Message], None] = _follower.step
        self._tick: Callable[[], None] = self._tick_election
        hs, cs = storage.initial_state()
        self._apply_conf_state(cs)
        if not hs.is_empty():
            self._load_state(hs)
        if cfg.applied > 0:
            self.log.applied_to(cfg.applied)
        self.become_follower(self.term, NONE)

    # -- persistent and soft state ------------------------------------------------------
    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, role=self.role)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.log.committed or hs.commit > self.log.last_index():
            raise RaftInvariantError(
                f"{self.id}: hard state commit {hs.commit} out of range "
                f"[{self.log.committed}, {self.log.last_index()}]")
        self.log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    # -- membership ------------------------------------------------------------------------
    def conf_state(self) -> ConfState:
        return ConfState(voters=frozenset(self.voters), learners=frozenset(self.learners))

    def _new_progress(self, node_id: int, is_learner: bool) -> Progress:
        cfg = self.cfg
        return Progress(self.log.last_index() + 1,
                        Inflights(cfg.max_inflight_msgs, cfg.max_inflight_bytes), is_learner)

    def _apply_conf_state(self, cs: ConfState) -> None:
        """Replace the membership by ``cs`` (on start and on snapshot restore)."""
        self.voters = set(cs.voters)
        self.learners = set(cs.learners)
        self.prs = {nid: self._new_progress(nid, nid in self.learners)
                    for nid in self.voters | self.learners}

    def apply_snapshot_conf_state(self, cs: ConfState) -> None:
        self._apply_conf_state(cs)

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed single-server change (dissertation §4.1). Called by the
        application when it applies the entry, so at most one is ever in effect-pending."""
        nid = cc.node_id
        if cc.type is ConfChangeType.ADD_NODE:
            self.learners.discard(nid)
            self.voters.add(nid)
            pr = self.prs.get(nid)
            if pr is None:
                self.prs[nid] = self._new_progress(nid, False)
            else:
                pr.is_learner = False
        elif cc.type is ConfChangeType.ADD_LEARNER:
            if nid not in self.voters and nid not in self.learners:
                self.learners.add(nid)
                self.prs[nid] = self._new_progress(nid, True)
        else:
            self.voters.discard(nid)
            self.learners.discard(nid)
            self.prs.pop(nid, None)
        self._after_conf_change()
        return self.conf_state()

    def _after_conf_change(self) -> None:
        if self.role is not StateRole.LEADER:
            return
        if self.id not in self.voters:
            # A removed leader steps down once the change is committed and applied.
            self.become_follower(self.term, NONE)
            return
        if self.lead_transferee != NONE and self.lead_transferee not in self.voters:
            self.abort_leader_transfer()
        if _leader.maybe_commit(self):
            _leader.bcast_append(self)
        else:
            for nid in list(self.prs):
                if nid != self.id:
                    _leader.maybe_send_append(self, nid, send_if_empty=False)

    def promotable(self) -> bool:
        """A node may campaign only if it is a voter (learners never do)."""
        return self.id in self.voters

    # -- sending ------------------------------------------------------------------------
    def send(self, m: Message) -> None:
        """Queue ``m`` with ``frm`` and (unless a vote message) ``term`` filled in."""
        frm = m.frm if m.frm != NONE else self.id
        term = m.term
        if m.type not in (MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP):
            if m.term != 0:
                raise RaftInvariantError(f"term should not be set for {m.type.name}")
            if m.type not in (MT.PROP, MT.READ_INDEX):
                term = self.term
        elif m.term == 0:
            raise RaftInvariantError(f"term must be set for {m.type.name}")
        if frm != m.frm or term != m.term:
            m = replace(m, frm=frm, term=term)
        if needs_persist(m, self.role):
            self.msgs_after_persist.append(m)
        else:
            self.msgs_now.append(m)

    # -- role changes -------------------------------------------------------------------
    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.votes = {}
        last = self.log.last_index()
        for nid, pr in self.prs.items():
            fresh = self._new_progress(nid, pr.is_learner)
            fresh.next = last + 1
            # A new term starts with nobody known active but ourselves, so check-quorum
            # judges a new leader on what it hears in its own first election timeout.
            fresh.recent_active = nid == self.id
            if nid == self.id:
                fresh.match = self.log.persisted_last_index()
            self.prs[nid] = fresh
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []
        self.read_ctx_to_broadcast = None
        self.append_pending = False

    def reset_randomized_election_timeout(self) -> None:
        et = self.cfg.election_ticks
        self.randomized_election_timeout = et + self.rng.randrange(et)

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = StateRole.FOLLOWER
        self._step = _follower.step
        self._tick = self._tick_election

    def become_pre_candidate(self) -> None:
        if self.role is StateRole.LEADER:
            raise RaftInvariantError("invalid transition leader -> pre-candidate")
        # Pre-vote changes neither term nor vote (dissertation §9.6).
        self.votes = {}
        self.lead = NONE
        self.role = StateRole.PRE_CANDIDATE
        self._step = _candidate.step
        self._tick = self._tick_election

    def become_candidate(self) -> None:
        if self.role is StateRole.LEADER:
            raise RaftInvariantError("invalid transition leader -> candidate")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = StateRole.CANDIDATE
        self._step = _candidate.step
        self._tick = self._tick_election

    def become_leader(self) -> None:
        if self.role is StateRole.FOLLOWER:
            raise RaftInvariantError("invalid transition follower -> leader")
        self._reset(self.term)
        self.lead = self.id
        self.role = StateRole.LEADER
        self._step = _leader.step
        self._tick = self._tick_heartbeat
        self.prs[self.id].become_replicate()
        # A no-op of the new term (§5.4.2, §8): it commits the previous terms' entries,
        # makes ReadIndex safe, and gates membership changes: none may be proposed until
        # it is applied (the single-server change bug, raft-dev 2015).
        _leader.append_entries(self, [(EntryType.NORMAL, b"")])
        self.pending_conf_index = self.log.last_index()
        self.cfg.logger.info("%x became leader at term %d", self.id, self.term)

    # -- ticks -----------------------------------------------------------------------------
    def tick(self) -> None:
        self._tick()

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_ticks:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                self.step(Message(type=MT.CHECK_QUORUM, frm=self.id))
            if self.role is StateRole.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.role is not StateRole.LEADER:
            return
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.BEAT, frm=self.id))

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- elections -------------------------------------------------------------------------
    def hup(self, kind: CampaignType) -> None:
        if self.role is StateRole.LEADER or not self.promotable():
            return
        if self._has_unapplied_conf_change():
            # The membership may be about to change; campaigning now could use a stale
            # voter set.
            return
        self.campaign(kind)

    def _has_unapplied_conf_change(self) -> bool:
        if self.log.committed <= self.log.applied:
            return False
        lo = max(self.log.applied + 1, self.log.first_index())
        ents = self.log.slice(lo, self.log.committed + 1)
        return any(e.type is EntryType.CONF_CHANGE for e in ents)

    def campaign(self, kind: CampaignType) -> None:
        if kind is CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_type, term = MT.PRE_VOTE, self.term + 1
        else:
            self.become_candidate()
            vote_type, term = MT.VOTE, self.term
        if self.poll(self.id, vote_type, True) is VoteResult.WON:
            # A single-voter cluster wins at once.
            if kind is CampaignType.PRE_ELECTION:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind is CampaignType.TRANSFER else b""
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for nid in sorted(self.voters):
            if nid != self.id:
                self.send(Message(type=vote_type, to=nid, term=term, index=last_index,
                                  log_term=last_term, context=ctx))

    def poll(self, node_id: int, vote_type: MessageType, granted: bool) -> VoteResult:
        self.votes.setdefault(node_id, granted)
        return vote_result(self.voters, self.votes)

    # -- the step function -----------------------------------------------------------------
    def step(self, m: Message) -> None:
        """Process one message (local or from the network)."""
        if m.term != 0 and not self._check_term(m):
            return
        t = m.type
        if t is MT.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.cfg.pre_vote else CampaignType.ELECTION)
        elif t is MT.VOTE or t is MT.PRE_VOTE:
            self._handle_vote_request(m)
        else:
            self._step(self, m)

    def _check_term(self, m: Message) -> bool:
        """Term rules common to every role (§5.1). Returns False if ``m`` is consumed."""
        if m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (self.cfg.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.cfg.election_ticks)
                if not force and in_lease:
                    # Leader stickiness: we heard from a leader within the minimum
                    # election timeout, so ignore a (possibly removed) disruptor (§4.2.3).
                    return False
            if m.type is MT.PRE_VOTE or (m.type is MT.PRE_VOTE_RESP and not m.reject):
                return True  # pre-votes never change our term
            lead = m.frm if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP) else NONE
            self.become_follower(m.term, lead)
            return True
        if m.term < self.term:
            self._handle_stale_term(m)
            return False
        return True

    def _handle_stale_term(self, m: Message) -> None:
        if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
            # A deposed leader that cannot learn the new term from a vote (those are
            # ignored under check-quorum / pre-vote) learns it from this response.
            self.send(Message(type=MT.APP_RESP, to=m.frm))
        elif m.type is MT.PRE_VOTE:
            self.send(Message(type=MT.PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True))

    def _handle_vote_request(self, m: Message) -> None:
        """§5.2, §5.4.1: grant at most one vote per term, to an up-to-date log."""
        can_vote = (self.vote == m.frm
                    or (self.vote == NONE and self.lead == NONE)
                    or (m.type is MT.PRE_VOTE and m.term > self.term))
        resp_type = MT.VOTE_RESP if m.type is MT.VOTE else MT.PRE_VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self.send(Message(type=resp_type, to=m.frm, term=m.term))
            if m.type is MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self.send(Message(type=resp_type, to=m.frm, term=self.term, reject=True))

    # -- read states -------------------------------------------------------------------------
    def add_read_state(self, index: int, ctx: bytes) -> None:
        self.read_states.append(ReadState(index=index, context=ctx))

    def flush_pending(self) -> None:
        """Send what was deferred to the end of this batch of inputs: one append per
        follower for all proposals since the last Ready (group commit), and one heartbeat
        round for all read requests registered since the last one."""
        if self.append_pending:
            self.append_pending = False
            if self.role is StateRole.LEADER:
                _leader.bcast_append(self)
        if self.read_ctx_to_broadcast is not None:
            ctx = self.read_ctx_to_broadcast
            self.read_ctx_to_broadcast = None
            if self.role is StateRole.LEADER:
                _leader.bcast_heartbeat(self, ctx)

