"""Leadership transfer (dissertation §3.10)."""

from __future__ import annotations

import pytest

from raftkv.raft.errors import ProposalDropped
from raftkv.raft.types import MessageType, StateRole
from tests.raft.harness import Network

MT = MessageType
ET = 10


def test_transfer_catches_up_the_target_then_sends_timeout_now():
    """Dissertation §3.10: the leader first brings the target's log up to date, then tells
    it to time out now; the target's election skips pre-vote and the others' leader
    stickiness, and it wins the next term."""
    net = Network(3)
    net.elect(1)
    term = net.term(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, b"t%d" % i)
    net.recover()
    last = net.last_index(1)
    net.nodes[1].transfer_leader(3)
    net.stabilize()
    kinds = [(m.type, m.frm, m.index) for m in net.delivered]
    caught_up = kinds.index((MT.APP_RESP, 3, last))
    timeout_now = kinds.index((MT.TIMEOUT_NOW, 1, 0))
    assert caught_up < timeout_now
    assert net.count(MT.TIMEOUT_NOW) == 1
    assert net.leaders() == [3]
    assert net.term(3) == term + 1
    assert net.raft(1).lead == 3


def test_transfer_requested_at_a_follower_is_forwarded():
    """Dissertation §3.10: any server may ask for a transfer; followers forward it."""
    net = Network(3)
    net.elect(1)
    net.nodes[2].transfer_leader(3)
    net.stabilize()
    assert net.leaders() == [3]


def test_proposals_dropped_during_transfer_then_transfer_aborts():
    """Dissertation §3.10: while transferring, the leader stops accepting proposals; if the
    transfer does not complete within an election timeout it aborts and resumes."""
    net = Network(3)
    net.elect(1)
    net.cut(1, 3)
    net.nodes[1].transfer_leader(3)
    net.stabilize()
    assert net.raft(1).lead_transferee == 3
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"x")
    net.tick(1, ET - 1)
    assert net.raft(1).lead_transferee == 3
    net.tick(1)
    assert net.raft(1).lead_transferee == 0
    assert net.role(1) is StateRole.LEADER
    net.propose(1, b"y")
    assert net.applied_data(2) == [b"y"]


@pytest.mark.parametrize("target", [1, 4])
def test_transfer_to_self_or_learner_is_ignored(target):
    """Dissertation §3.10 / §4.2.1: only another voter can take over; a transfer to the
    leader itself or to a learner (which may not campaign) is ignored."""
    net = Network([1, 2, 3], learners=[4])
    net.elect(1)
    net.nodes[1].transfer_leader(target)
    net.stabilize()
    assert net.raft(1).lead_transferee == 0
    assert net.count(MT.TIMEOUT_NOW) == 0
    assert net.leaders() == [1]
    net.propose(1, b"ok")
    assert net.applied_data(4) == [b"ok"]
