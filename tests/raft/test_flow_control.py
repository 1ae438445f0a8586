"""Flow control of replication: progress states (probe / replicate / snapshot), the
in-flight window, message size bounds, batching and the uncommitted-size bound. These are
etcd-io/raft's refinements of §5.3 ("the leader retries AppendEntries indefinitely") and
of the dissertation's §10.2 (pipelining and batching)."""

from __future__ import annotations

import pytest

from raftkv.raft.errors import ProposalDropped
from raftkv.raft.progress import ProgressState
from raftkv.raft.types import Message, MessageType
from tests.raft.harness import Network

MT = MessageType


def _acks_from(n: int):
    return lambda m: m.type is MT.APP_RESP and m.frm == n


def _apps(net: Network, to: int, since: int) -> list[Message]:
    return [m for m in net.delivered[since:]
            if m.type is MT.APP and m.frm == 1 and m.to == to and m.entries]


def test_probe_state_sends_one_append_per_heartbeat():
    """§5.3 / dissertation §10.2: until the leader knows where a follower's log matches
    (probe state) it sends one append and waits; each heartbeat response allows one more."""
    net = Network(3)
    net.drop_if(_acks_from(3))
    net.elect(1)
    assert net.nodes[1].status().progress[3].state is ProgressState.PROBE
    mark = len(net.delivered)
    for i in range(5):
        net.propose(1, b"p%d" % i)
    assert _apps(net, 3, mark) == []
    assert len(_apps(net, 2, mark)) == 5
    mark = len(net.delivered)
    net.tick(1)
    [app] = _apps(net, 3, mark)
    assert len(app.entries) == 6  # the no-op and the five proposals, in one probe


def test_replicate_state_pipelines_up_to_max_inflight_msgs():
    """Dissertation §10.2.2 (pipelining): once a follower's match index is known the leader
    sends appends without waiting, but never more than ``max_inflight_msgs`` unacknowledged."""
    net = Network(3, max_inflight_msgs=3)
    net.elect(1)
    assert net.nodes[1].status().progress[3].state is ProgressState.REPLICATE
    net.drop_if(_acks_from(3))
    mark = len(net.delivered)
    for i in range(10):
        net.propose(1, b"r%d" % i)
    assert len(_apps(net, 3, mark)) == 3
    assert len(_apps(net, 2, mark)) == 10
    assert net.raft(1).prs[3].inflights.full()


def test_heartbeat_response_frees_one_slot_of_a_full_window():
    """Dissertation §10.2.2: if the window is full because acks were lost, a heartbeat
    response proves the follower alive; the leader frees one slot and sends one append
    (with everything outstanding) instead of stalling forever."""
    net = Network(3, max_inflight_msgs=3)
    net.elect(1)
    net.drop_if(_acks_from(3))
    for i in range(10):
        net.propose(1, b"r%d" % i)
    mark = len(net.delivered)
    net.tick(1)
    [app] = _apps(net, 3, mark)
    assert [e.data for e in app.entries] == [b"r%d" % i for i in range(3, 10)]
    net.recover()
    net.tick(1)
    assert net.applied_data(3) == [b"r%d" % i for i in range(10)]


def test_max_size_per_msg_splits_appends():
    """Dissertation §10.2: an append carries at most ``max_size_per_msg`` bytes of entries
    (at least one entry), so catching up a follower is split into several messages."""
    net = Network(3, max_size_per_msg=250)  # two 100-byte entries (116 accounted) fit
    net.elect(1)
    net.isolate(3)
    data = [bytes([i]) * 100 for i in range(10)]
    for d in data:
        net.propose(1, d)
    net.recover()
    mark = len(net.delivered)
    net.tick(1)
    apps = _apps(net, 3, mark)
    assert len(apps) >= 5
    for m in apps:
        assert len(m.entries) == 1 or sum(e.size() for e in m.entries) <= 250
    assert max(len(m.entries) for m in apps) == 2
    assert net.applied_data(3) == data


def test_proposals_of_one_step_share_one_append():
    """Dissertation §10.2.1 (batching): entries proposed together are appended and sent
    to each follower as one message."""
    net = Network(3)
    net.elect(1)
    mark = len(net.delivered)
    net.nodes[1].propose_batch([b"a", b"b", b"c"])
    net.stabilize()
    for to in (2, 3):
        [app] = _apps(net, to, mark)
        assert [e.data for e in app.entries] == [b"a", b"b", b"c"]
    assert net.applied_data(2) == [b"a", b"b", b"c"]


def test_max_uncommitted_entries_size_drops_proposals():
    """etcd-io/raft ``MaxUncommittedEntriesSize`` (the memory bound of dissertation §10.2
    batching when quorum is lost): a leader whose uncommitted tail exceeds the bound drops
    new proposals; once the tail commits it accepts again."""
    net = Network(3, max_uncommitted_entries_size=100)
    net.elect(1)
    net.cut(1, 2)
    net.cut(1, 3)
    net.propose(1, b"a" * 60)
    with pytest.raises(ProposalDropped):
        net.propose(1, b"b" * 60)
    net.recover()
    net.tick(1)
    assert net.applied_data(1) == [b"a" * 60]
    net.propose(1, b"c" * 60)
    assert net.applied_data(2) == [b"a" * 60, b"c" * 60]
