"""Persistence before speaking (Raft §5.1 / Figure 2: "updated on stable storage before
responding to RPCs"; dissertation §3.8 and §10.2.1) and restart from durable state."""

from __future__ import annotations

from typing import Any

from raftkv.raft.rawnode import RawNode, Ready
from raftkv.raft.types import Entry, HardState, Message, MessageType
from tests.raft.harness import Network, boot_storage, make_config

MT = MessageType
RESPONSES = frozenset({MT.VOTE_RESP, MT.PRE_VOTE_RESP, MT.APP_RESP, MT.HEARTBEAT_RESP})
MAY_LEAVE_BEFORE_FSYNC = frozenset({MT.APP, MT.HEARTBEAT, MT.SNAP, MT.TIMEOUT_NOW,
                                    MT.READ_INDEX_RESP, MT.PROP, MT.READ_INDEX,
                                    MT.TRANSFER_LEADER})


def test_must_sync_when_term_vote_or_entries_change():
    """§5.1 / Figure 2: term, vote and log entries must be on stable storage (fsync) before
    the node answers; a Ready that only moves the commit index need not be synced (losing
    the commit index is safe)."""
    st = boot_storage([1, 2, 3], terms=[2, 2])  # indices 2, 3; term 2, commit 1
    raw = RawNode(make_config(2, check_quorum=False), st)

    def ready_after(m: Message) -> Ready:
        raw.step(m)
        rd = raw.ready()
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        raw.advance(rd)
        return rd

    rd = ready_after(Message(type=MT.HEARTBEAT, frm=1, to=2, term=2, commit=3))
    assert rd.hard_state == HardState(term=2, vote=0, commit=3)
    assert not rd.must_sync
    rd = ready_after(Message(type=MT.APP, frm=1, to=2, term=2, index=3, log_term=2,
                             entries=(Entry(term=2, index=4, data=b"e"),), commit=3))
    assert [e.index for e in rd.entries] == [4]
    assert rd.must_sync
    rd = ready_after(Message(type=MT.VOTE, frm=3, to=2, term=5, index=9, log_term=9))
    assert rd.hard_state == HardState(term=5, vote=3, commit=3)
    assert rd.must_sync
    rd = ready_after(Message(type=MT.HEARTBEAT, frm=3, to=2, term=5, commit=3))
    assert rd.hard_state is None
    assert not rd.must_sync


def test_vote_response_leaves_only_after_persisting_the_vote():
    """§5.1 / Figure 2, dissertation §3.8: the vote grant is in the same Ready as the vote
    it reflects, among the messages sent only after that Ready is durable."""
    net = Network(3, pre_vote=False, check_quorum=False)
    raw = net.nodes[2]
    raw.step(Message(type=MT.VOTE, frm=1, to=2, term=2, index=1, log_term=1))
    rd = raw.ready()
    assert rd.must_sync
    assert rd.hard_state is not None
    assert rd.hard_state.vote == 1
    assert [m.type for m in rd.messages_after_persist] == [MT.VOTE_RESP]
    assert rd.messages_now == ()


class _CheckingNetwork(Network):
    """Checks every Ready: no response may leave before the fsync."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.after_persist: list[MessageType] = []

    def handle_ready(self, nid: int, rd: Ready, out: list[Message] | None = None) -> None:
        for m in rd.messages_now:
            assert m.type not in RESPONSES, m
            assert m.type in MAY_LEAVE_BEFORE_FSYNC, m
        self.after_persist.extend(m.type for m in rd.messages_after_persist)
        super().handle_ready(nid, rd, out)


def test_responses_never_leave_before_the_fsync():
    """§5.1 / dissertation §10.2.1: only the leader's own appends, heartbeats, snapshots,
    TimeoutNow and read replies (and forwarded requests) may be sent before the Ready is
    persisted; every vote, pre-vote, append or heartbeat response waits for it."""
    for pre_vote in (True, False):
        net = _CheckingNetwork(3, pre_vote=pre_vote)
        net.elect(1)
        net.propose(2, b"a")
        net.nodes[3].read_index(b"r")
        net.stabilize()
        net.nodes[1].transfer_leader(3)
        net.stabilize()
        net.tick_all(3)
        net.isolate(3)
        net.tick_all(4 * 10)
        net.recover()
        net.tick_all(2 * 10)
        assert len(net.leaders()) == 1
        expected = RESPONSES if pre_vote else RESPONSES - {MT.PRE_VOTE_RESP}
        assert expected <= set(net.after_persist)  # the check above was not vacuous


def test_restart_restores_term_vote_commit_and_log():
    """§5.1 / Figure 2: currentTerm, votedFor and the log are persistent state; a restarted
    server resumes with them (and the commit index, persisted for convenience)."""
    net = Network(3)
    net.elect(1)
    for i in range(3):
        net.propose(1, b"k%d" % i)
    for n in (1, 2):
        raft = net.raft(n)
        before = (raft.term, raft.vote, raft.log.committed, raft.log.entries(2))
        net.restart(n)
        raft = net.raft(n)
        assert (raft.term, raft.vote, raft.log.committed, raft.log.entries(2)) == before
    assert net.raft(1).vote == 1
    net.tick_all(3 * 10)
    assert len(net.leaders()) == 1
    net.propose(net.leaders()[0], b"later")
    assert net.applied_data(3)[-1] == b"later"


def test_vote_survives_restart():
    """§5.2 / dissertation §3.8: the vote is durable, so a server that crashes and restarts
    cannot vote for a second candidate in the same term."""
    net = Network(3, pre_vote=False, check_quorum=False)
    net.elect(1)
    term = net.term(2)
    net.restart(2)
    [resp] = net.step_only(Message(type=MT.VOTE, frm=3, to=2, term=term, index=99,
                                   log_term=99))
    assert resp.reject
    assert net.raft(2).vote == 1
