"""Linearizable reads with ReadIndex (dissertation §6.4)."""

from __future__ import annotations

from raftkv.raft.types import MessageType, ReadState
from tests.raft.harness import Network

MT = MessageType


def test_read_deferred_until_leader_commits_an_entry_of_its_term():
    """Dissertation §6.4 step 1: a new leader does not know the cluster's commit index
    until its no-op commits, so a read arriving before that waits; its read index is then
    at least the no-op's index."""
    net = Network(3)
    net.drop(MT.APP)
    net.elect(1)
    net.nodes[1].read_index(b"r1")
    net.stabilize()
    assert net.state[1].read_states == []
    assert net.committed(1) == 1
    net.recover()
    net.tick(1)
    noop = net.last_index(1)
    assert net.committed(1) == noop
    assert net.state[1].read_states == [ReadState(index=noop, context=b"r1")]


def test_read_needs_a_heartbeat_quorum():
    """Dissertation §6.4 step 3: the leader answers only after a quorum acknowledged a
    heartbeat sent after the request; an isolated (possibly deposed) leader answers
    nothing."""
    net = Network(3)
    net.elect(1)
    net.isolate(1)
    net.nodes[1].read_index(b"q")
    net.stabilize()
    net.tick(1, 3)
    assert net.state[1].read_states == []
    assert any(m.type is MT.HEARTBEAT and m.context == b"q" for m in net.dropped)
    net.recover()
    net.tick(1)
    assert net.state[1].read_states == [ReadState(index=net.committed(1), context=b"q")]


def test_concurrent_reads_share_one_heartbeat_round():
    """Dissertation §6.4 (batching reads): requests registered before one heartbeat round
    are all confirmed by it: three reads cost one heartbeat per follower."""
    net = Network(3)
    net.elect(1)
    mark = len(net.delivered)
    for ctx in (b"a", b"b", b"c"):
        net.nodes[1].read_index(ctx)
    net.stabilize()
    assert net.count(MT.HEARTBEAT, frm=1, since=mark) == 2
    commit = net.committed(1)
    assert net.state[1].read_states == [ReadState(commit, c) for c in (b"a", b"b", b"c")]


def test_follower_read_index_via_leader():
    """Dissertation §6.4 (reads from followers): a follower asks the leader for the read
    index; the leader confirms leadership and replies with its commit index."""
    net = Network(3)
    net.elect(1)
    net.propose(1, b"x")
    net.nodes[2].read_index(b"f")
    net.stabilize()
    assert net.count(MT.READ_INDEX, frm=2, to=1) == 1
    assert net.count(MT.READ_INDEX_RESP, frm=1, to=2) == 1
    assert net.state[2].read_states == [ReadState(index=net.committed(1), context=b"f")]
    assert net.state[1].read_states == []


def test_single_node_read_is_immediate():
    """Dissertation §6.4: a single voter is its own quorum: no heartbeat round needed."""
    net = Network(1)
    net.elect(1)
    mark = len(net.delivered)
    net.nodes[1].read_index(b"s")
    net.stabilize()
    assert len(net.delivered) == mark
    assert net.state[1].read_states == [ReadState(index=net.committed(1), context=b"s")]
