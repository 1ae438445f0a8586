"""Log compaction and InstallSnapshot (Raft §7), with the leader's snapshot progress state."""

from __future__ import annotations

from raftkv.raft.progress import ProgressState
from raftkv.raft.types import ConfState, Message, MessageType, Snapshot, SnapshotMeta
from tests.raft.harness import Network

MT = MessageType
ALL = ConfState(voters=frozenset({1, 2, 3}))


def _lagging_follower_after_compaction(net: Network) -> int:
    """Leave 3 behind, snapshot and compact the leader's log, then add two entries."""
    net.elect(1)
    net.isolate(3)
    for i in range(10):
        net.propose(1, b"pre%d" % i)
    idx = net.committed(1)
    net.storages[1].create_snapshot(idx, ALL, b"state@%d" % idx)
    net.storages[1].compact(idx)
    for i in range(2):
        net.propose(1, b"post%d" % i)
    return idx


def test_lagging_follower_gets_snapshot_then_appends():
    """§7: when the leader has discarded the entries a follower needs, it sends its
    snapshot (InstallSnapshot); the follower replaces its log with it and then catches up
    through ordinary appends."""
    net = Network(3)
    idx = _lagging_follower_after_compaction(net)
    net.recover()
    mark = len(net.delivered)
    net.tick(1)
    snaps = [i for i, m in enumerate(net.delivered[mark:]) if m.type is MT.SNAP]
    assert len(snaps) == 1
    sent = net.delivered[mark + snaps[0]].snapshot
    assert sent is not None
    assert sent.meta.index == idx
    assert net.storages[3].snapshot().meta.index == idx
    later = net.delivered[mark + snaps[0]:]
    assert any(m.type is MT.APP and m.to == 3 and m.entries for m in later)
    assert net.last_index(3) == net.last_index(1)
    assert net.applied_data(3) == [b"post0", b"post1"]
    assert net.nodes[1].status().progress[3].state is ProgressState.REPLICATE
    net.propose(1, b"more")
    assert net.applied_data(3)[-1] == b"more"


def test_snapshot_progress_state_waits_for_report():
    """§7: while a snapshot is in flight the leader sends that follower no appends (it
    would need the compacted entries); a report of the send moves it back to probing, and
    from there to replicating."""
    net = Network(3)
    _lagging_follower_after_compaction(net)
    net.recover()
    net.drop_if(lambda m: m.type is MT.APP_RESP and m.frm == 3 and not m.reject)
    net.tick(1)
    assert net.nodes[1].status().progress[3].state is ProgressState.SNAPSHOT
    net.recover()
    mark = len(net.delivered)
    net.tick(1, 3)
    assert net.count(MT.APP, frm=1, to=3, since=mark) == 0
    assert net.nodes[1].status().progress[3].state is ProgressState.SNAPSHOT
    net.nodes[1].report_snapshot(3, ok=True)
    assert net.nodes[1].status().progress[3].state is ProgressState.PROBE
    net.tick(1)
    assert net.nodes[1].status().progress[3].state is ProgressState.REPLICATE
    assert net.last_index(3) == net.last_index(1)


def _snap(index: int, term: int, cs: ConfState = ALL) -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=term, conf_state=cs), data=b"s")


def test_stale_snapshot_is_ignored():
    """§7: a snapshot that covers less than the follower already committed is ignored
    (the follower keeps its log) and the reply tells the leader the follower's commit."""
    net = Network(3)
    net.elect(1)
    for i in range(3):
        net.propose(1, b"x%d" % i)
    commit = net.committed(3)
    last = net.last_index(3)
    out = net.step_only(Message(type=MT.SNAP, frm=1, to=3, term=net.term(1),
                                snapshot=_snap(3, net.term(1))))
    assert [(m.type, m.index, m.reject) for m in out] == [(MT.APP_RESP, commit, False)]
    assert net.storages[3].snapshot().meta.index == 1
    assert net.last_index(3) == last


def test_snapshot_excluding_the_receiver_is_refused():
    """§7 / dissertation §4.2: a snapshot whose configuration does not contain the receiver
    predates its addition; installing it would leave the node outside its own cluster, so
    it is refused (and the same snapshot including the node is installed)."""
    net = Network(3)
    net.elect(1)
    net.isolate(3)
    for i in range(3):
        net.propose(1, b"x%d" % i)
    term, commit = net.term(1), net.committed(3)
    without_3 = ConfState(voters=frozenset({1, 2}))
    out = net.step_only(Message(type=MT.SNAP, frm=1, to=3, term=term,
                                snapshot=_snap(10, term, without_3)))
    assert [(m.type, m.index) for m in out] == [(MT.APP_RESP, commit)]
    assert net.storages[3].snapshot().meta.index == 1
    assert net.committed(3) == commit

    out = net.step_only(Message(type=MT.SNAP, frm=1, to=3, term=term,
                                snapshot=_snap(10, term)))
    assert [(m.type, m.index) for m in out] == [(MT.APP_RESP, 10)]
    assert net.storages[3].snapshot().meta.index == 10
