"""Single-server membership changes and learners (dissertation §4.1-§4.2)."""

from __future__ import annotations

import pytest

from raftkv.raft.errors import ProposalDropped
from raftkv.raft.types import ConfChange, ConfChangeType, Message, MessageType, StateRole
from tests.raft.harness import BOOT_INDEX, Network

MT = MessageType
CCT = ConfChangeType
ET = 10


def _change(net: Network, leader: int, kind: ConfChangeType, nid: int) -> None:
    net.nodes[leader].propose_conf_change(ConfChange(kind, nid))
    net.stabilize()


def _with_learner() -> Network:
    """Voters {1, 2}, leader 1, and node 3 added as a learner."""
    net = Network(2)
    net.elect(1)
    net.add_node(3)
    _change(net, 1, CCT.ADD_LEARNER, 3)
    net.tick(1)  # the next heartbeat reaches the new member, which then catches up
    for n in (1, 2, 3):
        assert net.state[n].conf_state.learners == {3}
    return net


def test_learner_receives_the_log():
    """Dissertation §4.2.1: a new server joins as a non-voting member and is sent the log
    so it can catch up before it affects the quorum."""
    net = _with_learner()
    net.propose(1, b"x")
    assert net.applied_data(3) == [b"x"]
    assert net.nodes[1].status().progress[3].is_learner


def test_learner_does_not_count_for_commit():
    """Dissertation §4.2.1: a learner's copy never counts toward a commit quorum: with the
    other voter cut off, the leader's entry stays uncommitted although the learner has it
    (were the learner counted, 2 of {1, 2, 3} would commit it)."""
    net = _with_learner()
    net.cut(1, 2)
    commit = net.committed(1)
    net.propose(1, b"y")
    assert net.last_index(3) == net.last_index(1)
    assert net.committed(1) == commit


def test_learner_never_campaigns_and_its_vote_does_not_count():
    """Dissertation §4.2.1: a learner never starts an election, and a grant from a learner
    does not help a candidate win."""
    net = _with_learner()
    net.isolate(3)
    net.tick(3, 5 * ET)
    net.nodes[3].campaign()
    net.stabilize()
    assert net.role(3) is StateRole.FOLLOWER
    assert not any(m.frm == 3 and m.type in (MT.VOTE, MT.PRE_VOTE)
                   for m in net.delivered + net.dropped)

    net.recover()
    net.isolate(2)
    net.tick(1, 2 * ET)  # check-quorum: 1 cannot hear voter 2 and steps down
    assert net.role(1) is StateRole.FOLLOWER
    mark = len(net.delivered)
    net.campaign(1)
    assert net.role(1) is StateRole.PRE_CANDIDATE
    assert net.count(MT.PRE_VOTE, to=3, since=mark) == 0  # only voters are asked
    term = net.term(1)
    net.send(Message(type=MT.PRE_VOTE_RESP, frm=3, to=1, term=term + 1))
    assert net.role(1) is StateRole.PRE_CANDIDATE  # 2 of {1, 2, 3} would have won
    assert net.term(1) == term


def test_promoted_learner_counts_for_commit():
    """Dissertation §4.2.1: once caught up, the learner is promoted to voter; from then on
    its copy counts (the same cut that blocked commits above now does not)."""
    net = _with_learner()
    _change(net, 1, CCT.ADD_NODE, 3)
    assert net.state[1].conf_state.voters == {1, 2, 3}
    assert not net.nodes[1].status().progress[3].is_learner
    net.cut(1, 2)
    net.propose(1, b"z")
    assert net.applied_data(1) == [b"z"]


def test_removing_a_voter_shrinks_the_quorum():
    """Dissertation §4.1: after removing a voter, majorities are counted over the new,
    smaller configuration: 2 of {1, 2, 3} commit where 2 of {1, 2, 3, 4} could not."""
    net = Network(4)
    net.elect(1)
    net.isolate(3)
    net.isolate(4)
    net.propose(1, b"before")
    assert net.applied_data(1) == []
    net.recover()
    net.tick(1)
    assert net.applied_data(1) == [b"before"]
    _change(net, 1, CCT.REMOVE_NODE, 4)
    assert net.state[1].conf_state.voters == {1, 2, 3}
    net.isolate(3)
    net.isolate(4)
    net.propose(1, b"after")
    assert net.applied_data(2) == [b"before", b"after"]


def test_removed_leader_steps_down_once_the_change_applies():
    """Dissertation §4.2.2: a leader removed from the configuration manages the cluster
    until the change is committed, then steps down; the rest elect a new leader."""
    net = Network(3)
    net.elect(1)
    net.nodes[1].propose_conf_change(ConfChange(CCT.REMOVE_NODE, 1))
    assert net.role(1) is StateRole.LEADER
    net.stabilize()
    assert net.role(1) is StateRole.FOLLOWER
    assert net.state[2].conf_state.voters == {2, 3}
    for _ in range(3 * ET):
        net.tick_all()
        if net.leaders():
            break
    assert net.leaders() in ([2], [3])


def test_at_most_one_pending_conf_change():
    """Dissertation §4.1: a leader accepts a new membership change only once the previous
    one is applied; a second proposal meanwhile is dropped."""
    net = Network(3)
    net.elect(1)
    net.add_node(4)
    net.add_node(5)
    net.nodes[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER, 4))
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER, 5))
    net.stabilize()
    _change(net, 1, CCT.ADD_LEARNER, 5)
    assert net.state[1].conf_state.learners == {4, 5}


def test_no_conf_change_before_the_no_op_of_the_term_is_applied():
    """Dissertation §4.1 (the raft-dev 2015 single-server change bug): a new leader may not
    propose a membership change until an entry of its own term (the no-op) is applied;
    ordinary proposals are accepted meanwhile."""
    net = Network(3)
    net.drop(MT.APP)
    net.elect(1)
    net.add_node(4)
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER, 4))
    net.propose(1, b"ordinary")
    net.recover()
    net.tick(1)
    assert net.applied_data(1) == [b"ordinary"]
    _change(net, 1, CCT.ADD_LEARNER, 4)
    assert net.state[1].conf_state.learners == {4}


def test_restarted_node_with_unapplied_conf_change_does_not_campaign():
    """Dissertation §4.1: a node whose log holds a committed but not yet applied
    membership change does not campaign (it may be using a stale configuration) until
    it has applied it."""
    net = Network(3)
    net.elect(1)
    net.add_node(4)
    _change(net, 1, CCT.ADD_LEARNER, 4)
    term = net.term(2)
    net.restart(2, applied=BOOT_INDEX)
    net.frozen.add(2)
    net.nodes[2].campaign()
    assert net.role(2) is StateRole.FOLLOWER
    assert net.term(2) == term
    assert not net.raft(2).msgs_after_persist
    net.frozen.clear()
    net.stabilize()
    assert net.state[2].conf_state.learners == {4}
    net.nodes[2].campaign()
    assert net.role(2) is StateRole.PRE_CANDIDATE
