"""Leader-side handlers: proposals, replication with flow control, commit, ReadIndex,
leadership transfer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkv.raft.errors import (
    Compacted,
    ProposalDropped,
    SnapshotTemporarilyUnavailable,
    Unavailable,
)
from raftkv.raft.progress import ProgressState
from raftkv.raft.quorum import committed_index, majority
from raftkv.raft.types import NONE, Entry, EntryType, Message, MessageType

if TYPE_CHECKING:
    from raftkv.raft.core import Raft

MT = MessageType


def step(r: Raft, m: Message) -> None:
    t = m.type
    if t is MT.BEAT:
        bcast_heartbeat(r, r.read_only.last_pending_context() or b"")
    elif t is MT.CHECK_QUORUM:
        _check_quorum(r)
    elif t is MT.PROP:
        _handle_proposal(r, m)
    elif t is MT.READ_INDEX:
        _handle_read_index(r, m)
    elif t is MT.APP_RESP:
        _handle_append_response(r, m)
    elif t is MT.HEARTBEAT_RESP:
        _handle_heartbeat_response(r, m)
    elif t is MT.SNAP_STATUS:
        _handle_snap_status(r, m)
    elif t is MT.UNREACHABLE:
        pr = r.prs.get(m.frm)
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()  # the optimistic pipeline was lost; probe again
    elif t is MT.TRANSFER_LEADER:
        _handle_transfer_leader(r, m)


# -- proposals ------------------------------------------------------------------------------
def _handle_proposal(r: Raft, m: Message) -> None:
    if not m.entries:
        raise ProposalDropped("empty proposal")
    if r.id not in r.prs:
        raise ProposalDropped("leader was removed from the configuration")
    if r.lead_transferee != NONE:
        raise ProposalDropped(f"leadership transfer to {r.lead_transferee:x} in progress")
    items: list[tuple[EntryType, bytes]] = []
    for e in m.entries:
        if e.type is EntryType.CONF_CHANGE:
            if not conf_change_allowed(r):
                raise ProposalDropped("a membership change is already pending")
            r.pending_conf_index = r.log.last_index() + len(items) + 1
        items.append((e.type, e.data))
    append_entries(r, items)
    # Replicate once per Ready, not once per proposal: every proposal that arrives before
    # the application next asks for a Ready shares one append per follower.
    r.append_pending = True


def conf_change_allowed(r: Raft) -> bool:
    """At most one membership change may be pending (not yet applied), and none may be
    proposed before the no-op of this term is applied (dissertation §4.1, raft-dev 2015)."""
    return r.pending_conf_index <= r.log.applied


def append_entries(r: Raft, items: list[tuple[EntryType, bytes]]) -> None:
    """Append new entries of the current term to the leader's own log."""
    size = sum(len(d) for _, d in items)
    limit = r.cfg.max_uncommitted_entries_size
    if limit > 0 and size > 0 and r.uncommitted_size > 0 and r.uncommitted_size + size > limit:
        raise ProposalDropped("too many uncommitted entries (max_uncommitted_entries_size)")
    r.uncommitted_size += size
    last = r.log.last_index()
    ents = [Entry(term=r.term, index=last + i + 1, type=kind, data=data)
            for i, (kind, data) in enumerate(items)]
    r.log.append(ents)
    # The leader's own progress advances only once the entries are persisted
    # (see on_persisted), so a quorum always means a quorum of durable copies.


def on_persisted(r: Raft, index: int) -> None:
    """The application made the leader's log durable up to ``index``."""
    pr = r.prs.get(r.id)
    if pr is not None and pr.maybe_update(index) and maybe_commit(r):
        bcast_append(r)


def maybe_commit(r: Raft) -> bool:
    """Advance the commit index to what a quorum of voters has durably stored.

    Only an entry of the current term is committed by counting (§5.4.2, Figure 8);
    earlier entries commit with it.
    """
    acked = {nid: pr.match for nid, pr in r.prs.items() if not pr.is_learner}
    if not r.log.maybe_commit(committed_index(r.voters, acked), r.term):
        return False
    _release_pending_reads(r)
    return True


# -- replication ------------------------------------------------------------------------------
def bcast_append(r: Raft) -> None:
    for nid in r.prs:
        if nid != r.id:
            maybe_send_append(r, nid, send_if_empty=True)


def maybe_send_append(r: Raft, to: int, send_if_empty: bool) -> bool:
    """Send the entries ``to`` is missing, within the flow-control bounds."""
    pr = r.prs[to]
    if pr.is_paused():
        return False
    prev_index = pr.next - 1
    try:
        prev_term = r.log.term(prev_index)
        ents = r.log.entries(pr.next, r.cfg.max_size_per_msg)
    except (Compacted, Unavailable):
        return _maybe_send_snapshot(r, to)
    if not ents and not send_if_empty:
        return False
    r.send(Message(type=MT.APP, to=to, index=prev_index, log_term=prev_term,
                   entries=tuple(ents), commit=r.log.committed))
    if ents:
        pr.sent_entries(len(ents), sum(e.size() for e in ents), ents[-1].index)
    else:
        pr.sent_entries(0, 0, prev_index)
    return True


def _maybe_send_snapshot(r: Raft, to: int) -> bool:
    pr = r.prs[to]
    if not pr.recent_active:
        return False  # do not ship a snapshot to a peer that seems to be down
    try:
        snap = r.log.snapshot()
    except SnapshotTemporarilyUnavailable:
        return False
    if snap.is_empty():
        return False
    pr.become_snapshot(snap.meta.index)
    r.send(Message(type=MT.SNAP, to=to, snapshot=snap))
    return True


def bcast_heartbeat(r: Raft, ctx: bytes) -> None:
    for nid, pr in r.prs.items():
        if nid != r.id:
            # Never tell a follower to commit beyond what it is known to hold.
            r.send(Message(type=MT.HEARTBEAT, to=nid, commit=min(pr.match, r.log.committed),
                           context=ctx))


def _handle_append_response(r: Raft, m: Message) -> None:
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    pr.recent_active = True
    if m.reject:
        hint = m.reject_hint
        if m.log_term > 0:
            hint, _ = r.log.find_conflict_by_term(m.reject_hint, m.log_term)
        if pr.maybe_decr_to(m.index, hint):
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            maybe_send_append(r, m.frm, send_if_empty=True)
        return
    was_paused = pr.is_paused()
    if not pr.maybe_update(m.index):
        return
    if pr.state is ProgressState.PROBE:
        pr.become_replicate()
    elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
        pr.become_probe()
        pr.become_replicate()
    elif pr.state is ProgressState.REPLICATE:
        pr.inflights.free_le(m.index)
    if maybe_commit(r):
        bcast_append(r)
    elif was_paused:
        maybe_send_append(r, m.frm, send_if_empty=True)
    while maybe_send_append(r, m.frm, send_if_empty=False):
        pass
    if m.frm == r.lead_transferee and pr.match == r.log.last_index():
        r.send(Message(type=MT.TIMEOUT_NOW, to=m.frm))


def _handle_heartbeat_response(r: Raft, m: Message) -> None:
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    pr.recent_active = True
    pr.msg_app_flow_paused = False
    if pr.state is ProgressState.REPLICATE and pr.inflights.full():
        # The follower is alive but the window is full: its acks (or our appends) were
        # probably lost. Free one slot so replication can make progress again.
        pr.inflights.free_first_one()
    if pr.match < r.log.last_index() or pr.state is ProgressState.PROBE:
        maybe_send_append(r, m.frm, send_if_empty=True)
    if not m.context:
        return
    acks = r.read_only.recv_ack(m.frm, m.context)
    if acks is None or not _has_quorum(r, acks):
        return
    for status in r.read_only.advance(m.context):
        _respond_read(r, status.request, status.index)


def _handle_snap_status(r: Raft, m: Message) -> None:
    pr = r.prs.get(m.frm)
    if pr is None or pr.state is not ProgressState.SNAPSHOT:
        return
    if m.reject:
        pr.pending_snapshot = 0
    pr.become_probe()
    # Wait for the follower's response (or a heartbeat) before probing again.
    pr.msg_app_flow_paused = True


def _check_quorum(r: Raft) -> None:
    active = {nid for nid, pr in r.prs.items() if nid == r.id or pr.recent_active}
    if not _has_quorum(r, active):
        r.cfg.logger.info("%x stepped down: no quorum active at term %d", r.id, r.term)
        r.become_follower(r.term, NONE)
        return
    for nid, pr in r.prs.items():
        if nid != r.id:
            pr.recent_active = False


def _has_quorum(r: Raft, ids: set[int]) -> bool:
    return len(ids & r.voters) >= majority(len(r.voters))


# -- linearizable reads (dissertation §6.4) --------------------------------------------------
def _handle_read_index(r: Raft, m: Message) -> None:
    if r.voters == {r.id}:
        _respond_read(r, m, r.log.committed)
        return
    if r.log.zero_term_on_err(r.log.committed) != r.term:
        # Until an entry of this term commits, our commit index may lag behind the
        # cluster's; defer the read.
        r.pending_read_index_messages.append(m)
        return
    send_read_index(r, m)


def send_read_index(r: Raft, m: Message) -> None:
    """Record the commit index now; answer once a heartbeat round confirms leadership."""
    r.read_only.add_request(r.log.committed, m)
    r.read_only.recv_ack(r.id, m.context)
    r.read_ctx_to_broadcast = m.context


def _release_pending_reads(r: Raft) -> None:
    if r.pending_read_index_messages and r.log.zero_term_on_err(r.log.committed) == r.term:
        pending, r.pending_read_index_messages = r.pending_read_index_messages, []
        for m in pending:
            send_read_index(r, m)


def _respond_read(r: Raft, req: Message, index: int) -> None:
    if req.frm in (NONE, r.id):
        r.add_read_state(index, req.context)
    else:
        r.send(Message(type=MT.READ_INDEX_RESP, to=req.frm, index=index,
                       context=req.context))


# -- leadership transfer (dissertation §3.10) -------------------------------------------------
def _handle_transfer_leader(r: Raft, m: Message) -> None:
    transferee = m.frm
    pr = r.prs.get(transferee)
    if pr is None or pr.is_learner or transferee == r.id:
        return
    if r.lead_transferee == transferee:
        return  # already in progress
    r.abort_leader_transfer()
    r.election_elapsed = 0  # the transfer must finish within one election timeout
    r.lead_transferee = transferee
    if pr.match == r.log.last_index():
        r.send(Message(type=MT.TIMEOUT_NOW, to=transferee))
    else:
        maybe_send_append(r, transferee, send_if_empty=True)

