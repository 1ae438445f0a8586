"""Handlers for the (pre-)candidate roles (Raft §5.2, dissertation §9.6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkv.raft import _follower, _leader
from raftkv.raft.errors import ProposalDropped
from raftkv.raft.quorum import VoteResult
from raftkv.raft.types import NONE, Message, MessageType, StateRole

if TYPE_CHECKING:
    from raftkv.raft.core import Raft

MT = MessageType


def step(r: Raft, m: Message) -> None:
    t = m.type
    my_resp = MT.PRE_VOTE_RESP if r.role is StateRole.PRE_CANDIDATE else MT.VOTE_RESP
    if t is MT.PROP:
        raise ProposalDropped("no leader (election in progress)")
    if t in (MT.APP, MT.HEARTBEAT, MT.SNAP):
        # A leader of our term exists (§5.2): step down and handle it as a follower.
        r.become_follower(m.term, m.frm)
        _follower.step(r, m)
    elif t is my_resp:
        _handle_vote_response(r, m)
    elif t is MT.READ_INDEX:
        raise ProposalDropped("no leader (election in progress)")


def _handle_vote_response(r: Raft, m: Message) -> None:
    result = r.poll(m.frm, m.type, not m.reject)
    if result is VoteResult.WON:
        if r.role is StateRole.PRE_CANDIDATE:
            from raftkv.raft.core import CampaignType

            r.campaign(CampaignType.ELECTION)
        else:
            r.become_leader()
            _leader.bcast_append(r)
    elif result is VoteResult.LOST:
        # A pre-vote rejection at a higher term was already handled by the term check;
        # here the term is ours.
        r.become_follower(r.term, NONE)
