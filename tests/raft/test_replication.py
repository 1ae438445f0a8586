"""Log replication and the commit rule: Raft §5.3, §5.4.2 (Figure 8), §8 (the no-op),
dissertation §10.2.1 (the leader counts itself only once durable)."""

from __future__ import annotations

import pytest

from raftkv.raft.errors import ProposalDropped
from raftkv.raft.rawnode import RawNode
from raftkv.raft.types import Entry, HardState, Message, MessageType, StateRole
from tests.raft.harness import Network, boot_storage, make_config

MT = MessageType


def test_logs_match_after_replication():
    """§5.3 Log Matching: entries replicated by one leader are identical (index, term,
    data) on every server and applied in the same order."""
    net = Network(3)
    net.elect(1)
    for i in range(5):
        net.propose(1 + i % 3, f"v{i}".encode())
    logs = {n: net.nodes[n].raft.log.entries(2) for n in (1, 2, 3)}
    assert logs[1] == logs[2] == logs[3]
    assert net.applied_data(1) == net.applied_data(2) == net.applied_data(3)
    assert net.applied_data(3) == [f"v{i}".encode() for i in range(5)]


def test_follower_rejects_append_whose_previous_entry_does_not_match():
    """§5.3: AppendEntries carries the (index, term) of the preceding entry; a follower
    without that entry refuses the new entries."""
    st = boot_storage([1, 2, 3], terms=[1, 1, 2, 2])
    net = Network(3, storages={3: st})
    app = Message(type=MT.APP, frm=1, to=3, term=3, index=5, log_term=3,
                  entries=(Entry(term=3, index=6, data=b"x"),), commit=1)
    [resp] = net.step_only(app)
    assert resp.type is MT.APP_RESP
    assert resp.reject
    assert net.last_index(3) == 5
    assert net.storages[3].last_index() == 5


def test_conflicting_suffix_is_truncated():
    """§5.3: if an existing entry conflicts with a new one (same index, different term),
    the follower deletes it and all that follow, then appends the leader's entries."""
    st = boot_storage([1, 2, 3], terms=[1, 1, 2, 2])  # indices 2..5
    net = Network(3, storages={3: st})
    app = Message(type=MT.APP, frm=1, to=3, term=3, index=3, log_term=1,
                  entries=(Entry(term=3, index=4, data=b"a"),
                           Entry(term=3, index=5, data=b"b")), commit=1)
    [resp] = net.step_only(app)
    assert (resp.reject, resp.index) == (False, 5)
    assert net.log_terms(3) == [1, 1, 3, 3]
    assert [net.storages[3].term(i) for i in (4, 5)] == [3, 3]
    assert net.storages[3].entries(4, 6) == list(app.entries)


def test_matching_entries_are_never_truncated():
    """§5.3 / dissertation §3.5: a delayed append whose entries are already in the log
    (same index and term) must not truncate what follows them, which may have been
    acknowledged and committed."""
    st = boot_storage([1, 2, 3], terms=[1, 1, 2, 2, 2])  # indices 2..6
    net = Network(3, storages={3: st})
    stale = Message(type=MT.APP, frm=1, to=3, term=2, index=2, log_term=1,
                    entries=(Entry(term=1, index=3, data=b"i3t1"),
                             Entry(term=2, index=4, data=b"i4t2")), commit=1)
    readies = net.state[3].readies
    [resp] = net.step_only(stale)
    assert (resp.reject, resp.index) == (False, 4)
    assert net.last_index(3) == 6
    assert net.log_terms(3) == [1, 1, 2, 2, 2]
    assert net.storages[3].last_index() == 6
    assert net.state[3].readies == readies + 1


def test_fast_backtracking_skips_a_conflicting_term_in_one_round_trip():
    """§5.3 (end of section): a rejecting follower returns the term of its conflicting
    entry and the leader skips every entry of that term, so a divergent suffix of one
    term costs one rejection instead of one per entry (four here)."""
    leader_log = [1, 1, 3, 3, 3]            # indices 2..6
    follower_log = [1, 1] + [2] * 8         # indices 2..11, term 2 never committed
    storages = {1: boot_storage([1, 2, 3], terms=leader_log),
                2: boot_storage([1, 2, 3], terms=follower_log),
                3: boot_storage([1, 2, 3], terms=leader_log)}
    net = Network(3, storages=storages)
    net.elect(1)
    rejects = [m for m in net.delivered if m.type is MT.APP_RESP and m.frm == 2 and m.reject]
    assert len(rejects) == 1
    assert net.log_terms(2) == net.log_terms(1) == [1, 1, 3, 3, 3, 4]
    assert net.committed(2) == 7


def test_fast_backtracking_for_a_follower_far_behind():
    """§5.3: a follower that missed 50 entries tells the leader its last index in its
    first rejection; it then catches up with one more append, not 50 probes."""
    net = Network(3)
    net.elect(1)
    net.isolate(3)
    for i in range(50):
        net.propose(1, b"x%d" % i)
    net.recover()
    mark = len(net.delivered)
    net.tick(1)  # heartbeat; the response reveals 3 is behind
    rejects = [m for m in net.delivered[mark:]
               if m.type is MT.APP_RESP and m.frm == 3 and m.reject]
    assert len(rejects) <= 1
    assert net.count(MT.APP, frm=1, to=3, since=mark) <= 3
    assert net.last_index(3) == net.last_index(1)
    assert len(net.applied_data(3)) == 50


def _figure8() -> Network:
    """Figure 8 (c) of the paper, indices shifted by one for the bootstrap entry.

    S1 leads term 4 (votes of S2, S3, S4). Index 2 holds S1's term-2 entry on S1, S2, S3 (a
    majority); S5 holds a term-3 entry at index 2. Appends are dropped, so S1's no-op of
    term 4 (index 3) is only on S1.
    """
    hs = HardState(term=3, commit=1)
    storages = {1: boot_storage(range(1, 6), terms=[2], hard_state=hs),
                2: boot_storage(range(1, 6), terms=[2], hard_state=hs),
                3: boot_storage(range(1, 6), terms=[2], hard_state=hs),
                4: boot_storage(range(1, 6), hard_state=hs),
                5: boot_storage(range(1, 6), terms=[3], hard_state=hs)}
    net = Network(5, storages=storages, pre_vote=False, check_quorum=False)
    net.drop(MT.APP)
    net.elect(1)
    assert net.term(1) == 4
    assert net.log_terms(1) == [2, 4]
    # S2 and S3 acknowledge index 2 (the term-2 entry): a majority holds it.
    net.send(Message(type=MT.APP_RESP, frm=2, to=1, term=4, index=2),
             Message(type=MT.APP_RESP, frm=3, to=1, term=4, index=2))
    assert net.nodes[1].status().progress[2].match == 2
    return net


def test_figure8_previous_term_entry_is_not_committed_by_counting():
    """§5.4.2 / Figure 8: a leader never commits an entry of a previous term by counting
    replicas. Were index 2 committed in (c), S5 could still be elected in (d) (its last
    term 3 beats S2-S4's) and overwrite it: the test plays (d) to show that it does."""
    net = _figure8()
    assert net.committed(1) == 1
    # (d): S1 crashes; S5 wins term 5 with votes of S2, S3, S4 and overwrites index 2.
    net.recover()
    net.isolate(1)
    net.campaign(5)  # term 4: S2-S4 already voted for S1 in term 4
    net.campaign(5)
    assert net.role(5) is StateRole.LEADER
    assert net.term(5) == 5
    for n in (2, 3, 4):
        assert net.log_terms(n)[0] == 3
        assert net.committed(n) == 3


def test_figure8_current_term_entry_commits_previous_entries():
    """§5.4.2 / Figure 8 (e): once an entry of the leader's own term is on a majority it
    commits, and every earlier entry with it; S5 can then no longer be elected."""
    net = _figure8()
    net.recover()
    net.cut(1, 4)
    net.cut(1, 5)
    net.tick(1)  # heartbeat: responses trigger the missing appends to S2 and S3
    assert net.committed(1) == 3
    assert [e.data for e in net.state[1].applied] == [b"i2t2", b""]
    net.isolate(1)  # S1 crashes; S5 cannot win over S2 and S3 any more
    net.campaign(5)
    net.campaign(5)
    assert net.role(5) is not StateRole.LEADER
    assert net.log_terms(2) == net.log_terms(3) == [2, 4]


def test_new_leader_appends_a_no_op_of_its_term():
    """§8 / §5.4.2: a new leader appends an empty entry of its term at once; committing it
    commits the entries left by earlier terms."""
    storages = {n: boot_storage([1, 2, 3], terms=[2]) for n in (1, 2, 3)}
    net = Network(3, storages=storages)
    assert net.committed(1) == 1  # index 2 (term 2) is not known committed
    net.elect(1)
    last = net.nodes[1].raft.log.entries(net.last_index(1))[0]
    assert (last.term, last.data) == (net.term(1), b"")
    assert net.term(1) == 3
    for n in (1, 2, 3):
        assert net.committed(n) == 3
        assert [(e.index, e.term, e.data) for e in net.state[n].applied] == [
            (2, 2, b"i2t2"), (3, 3, b"")]


def test_single_node_leader_commits_only_after_persisting():
    """Dissertation §10.2.1 / §3.6 (etcd #14370): a single voter is its own quorum, so it
    may count its entry only once it is durable; a Ready handed out but not yet advanced
    commits nothing."""
    st = boot_storage([1])
    raw = RawNode(make_config(1), st)
    raw.campaign()
    assert raw.raft.role is StateRole.LEADER

    def persist_and_advance() -> tuple[Entry, ...]:
        rd = raw.ready()
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        raw.advance(rd)
        return rd.committed_entries

    persist_and_advance()  # the no-op
    persist_and_advance()
    raw.propose(b"x")
    rd = raw.ready()
    assert [e.data for e in rd.entries] == [b"x"]
    assert rd.committed_entries == ()
    assert raw.raft.log.committed == 2
    assert not raw.raft.log.has_next_committed_ents()
    st.append(rd.entries)
    raw.advance(rd)
    assert raw.raft.log.committed == 3
    assert [e.data for e in raw.ready().committed_entries] == [b"x"]


def test_leader_counts_its_own_entry_only_after_persisting():
    """Dissertation §10.2.1: the leader sends appends before its own fsync, but its own
    copy counts toward the quorum only after ``advance``. With follower 3 cut off, one
    follower ack (2 of 3 copies sent, only 1 durable) must not commit the entry."""
    net = Network(3)
    net.elect(1)
    net.cut(1, 3)
    net.frozen.add(1)
    raw = net.nodes[1]
    before = net.committed(1)
    raw.propose(b"x")
    rd = raw.ready()
    net.send(*rd.messages_now)
    assert net.count(MT.APP_RESP, frm=2) > 0
    assert net.committed(1) == before
    assert net.nodes[1].status().progress[2].match == before + 1
    net.storages[1].append(rd.entries)
    raw.advance(rd)
    net.frozen.clear()
    net.stabilize()
    assert net.committed(1) == before + 1
    assert net.applied_data(2) == [b"x"]


def test_follower_forwards_proposals_to_the_leader():
    """§5.1 / §8: clients may contact any server; a follower passes proposals on to the
    leader (unless forwarding is disabled, in which case the proposal is dropped)."""
    net = Network(3, seed=1)
    net.elect(1)
    net.propose(2, b"via-2")
    assert net.count(MT.PROP, frm=2, to=1) == 1
    assert net.applied_data(3) == [b"via-2"]

    strict = Network(3, disable_proposal_forwarding=True)
    strict.elect(1)
    with pytest.raises(ProposalDropped):
        strict.nodes[2].propose(b"no")


def test_proposal_without_a_known_leader_is_dropped():
    """§8: with no leader known there is nobody to forward to; the proposal is dropped so
    the client can retry elsewhere."""
    net = Network(3)
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"x")
