"""Follower handlers: appends (§5.3), heartbeats, snapshots (§7), forwarding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkv.raft.errors import ProposalDropped
from raftkv.raft.types import NONE, Message, MessageType, Snapshot, StateRole

if TYPE_CHECKING:
    from raftkv.raft.core import Raft

MT = MessageType


def step(r: Raft, m: Message) -> None:
    t = m.type
    if t is MT.APP:
        r.election_elapsed = 0
        r.lead = m.frm
        handle_append(r, m)
    elif t is MT.HEARTBEAT:
        r.election_elapsed = 0
        r.lead = m.frm
        _handle_heartbeat(r, m)
    elif t is MT.SNAP:
        r.election_elapsed = 0
        r.lead = m.frm
        _handle_snapshot(r, m)
    elif t in (MT.PROP, MT.READ_INDEX, MT.TRANSFER_LEADER):
        _forward(r, m)
    elif t is MT.TIMEOUT_NOW:
        from raftkv.raft.core import CampaignType

        # Leadership transfer: campaign at once, skipping pre-vote and stickiness.
        r.hup(CampaignType.TRANSFER)
    elif t is MT.READ_INDEX_RESP:
        r.add_read_state(m.index, m.context)


def _forward(r: Raft, m: Message) -> None:
    if r.lead == NONE:
        raise ProposalDropped(f"no leader known (cannot forward {m.type.name})")
    if m.type is MT.PROP and r.cfg.disable_proposal_forwarding:
        raise ProposalDropped("proposal forwarding is disabled")
    if m.type is MT.TRANSFER_LEADER and m.frm == r.id and r.lead == r.id:
        return
    from dataclasses import replace

    r.send(replace(m, to=r.lead))


def handle_append(r: Raft, m: Message) -> None:
    if m.index < r.log.committed:
        r.send(Message(type=MT.APP_RESP, to=m.frm, index=r.log.committed))
        return
    last_new = r.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last_new is not None:
        r.send(Message(type=MT.APP_RESP, to=m.frm, index=last_new))
        return
    # Reject with a hint so the leader can skip a whole term at a time (§5.3, the
    # optimisation at the end of the section).
    hint_index = min(m.index, r.log.last_index())
    hint_index, hint_term = r.log.find_conflict_by_term(hint_index, m.log_term)
    r.send(Message(type=MT.APP_RESP, to=m.frm, index=m.index, reject=True,
                   reject_hint=hint_index, log_term=hint_term))


def _handle_heartbeat(r: Raft, m: Message) -> None:
    r.log.commit_to(m.commit)
    r.send(Message(type=MT.HEARTBEAT_RESP, to=m.frm, context=m.context))


def _handle_snapshot(r: Raft, m: Message) -> None:
    snap = m.snapshot
    if snap is not None and _restore(r, snap):
        r.send(Message(type=MT.APP_RESP, to=m.frm, index=r.log.last_index()))
    else:
        r.send(Message(type=MT.APP_RESP, to=m.frm, index=r.log.committed))


def _restore(r: Raft, snap: Snapshot) -> bool:
    """Install a snapshot from the leader (§7). Returns False if it is not needed."""
    meta = snap.meta
    if meta.index <= r.log.committed:
        return False
    if r.role is not StateRole.FOLLOWER:
        return False
    if not meta.conf_state.contains(r.id):
        # Not in the snapshot's configuration: it predates our addition; the leader will
        # send a newer one. Installing it would leave us with a membership excluding us.
        return False
    if r.log.match_term(meta.index, meta.term):
        # We already have the entries; just fast-forward the commit index.
        r.log.commit_to(meta.index)
        return False
    r.log.restore(snap)
    r.apply_snapshot_conf_state(meta.conf_state)
    return True
