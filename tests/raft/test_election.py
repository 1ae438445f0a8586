"""Leader election: Raft §5.2, §5.4.1, dissertation §9.6 (pre-vote) and §6.2/§4.2.3
(check-quorum and leader stickiness)."""

from __future__ import annotations

import pytest

from raftkv.raft.rawnode import RawNode
from raftkv.raft.types import Message, MessageType, StateRole
from tests.raft.harness import Network, boot_storage, make_config

MT = MessageType
ET = 10


def _ticks_until_campaign(seed: int, pre_vote: bool) -> tuple[int, RawNode]:
    raw = RawNode(make_config(1, seed, pre_vote=pre_vote), boot_storage([1, 2, 3]))
    for ticks in range(1, 10 * ET):
        raw.tick()
        if raw.raft.role is not StateRole.FOLLOWER:
            return ticks, raw
    raise AssertionError("never campaigned")


@pytest.mark.parametrize("pre_vote", [True, False])
def test_follower_times_out_within_randomized_election_timeout(pre_vote):
    """§5.2: a follower that hears nothing for a randomized timeout in [et, 2et) starts an
    election: a pre-candidate (term unchanged, dissertation §9.6) or a candidate (term+1,
    votes for itself), asking every other voter for a vote."""
    timeouts = set()
    for seed in range(40):
        ticks, raw = _ticks_until_campaign(seed, pre_vote)
        assert ET <= ticks < 2 * ET
        timeouts.add(ticks)
        rd = raw.ready()
        votes = [m for m in rd.messages_after_persist if m.type in (MT.VOTE, MT.PRE_VOTE)]
        assert sorted(m.to for m in votes) == [2, 3]
        if pre_vote:
            assert raw.raft.role is StateRole.PRE_CANDIDATE
            assert raw.raft.term == 1
            assert all(m.type is MT.PRE_VOTE and m.term == 2 for m in votes)
        else:
            assert raw.raft.role is StateRole.CANDIDATE
            assert (raw.raft.term, raw.raft.vote) == (2, 1)
            assert all(m.type is MT.VOTE and m.term == 2 for m in votes)
    # Randomized (§5.2): the timeouts are spread over the interval, not one fixed value.
    assert len(timeouts) >= 5


def test_candidate_with_majority_becomes_leader_and_others_follow():
    """§5.2: a candidate that wins votes from a majority becomes leader; the others learn
    of it from its first append and follow it in the same term."""
    net = Network(5)
    net.isolate(4)
    net.isolate(5)
    net.elect(1)
    assert [net.role(n) for n in (2, 3)] == [StateRole.FOLLOWER] * 2
    assert {net.raft(n).lead for n in (1, 2, 3)} == {1}
    assert {net.term(n) for n in (1, 2, 3)} == {2}


def test_candidate_without_majority_does_not_win():
    """§5.2: without votes from a majority (2 of 5 here) no leader is elected."""
    net = Network(5, pre_vote=False)
    for n in (3, 4, 5):
        net.isolate(n)
    net.campaign(1)
    assert net.role(1) is StateRole.CANDIDATE
    assert net.leaders() == []


def test_at_most_one_vote_per_term():
    """§5.2: each server votes for at most one candidate in a given term (first come,
    first served); repeating the request of the candidate it voted for is granted again."""
    net = Network(3, pre_vote=False, check_quorum=False)

    def vote(frm: int) -> Message:
        [resp] = net.step_only(Message(type=MT.VOTE, frm=frm, to=3, term=5, index=1,
                                       log_term=1))
        assert resp.type is MT.VOTE_RESP
        return resp

    assert not vote(1).reject
    assert vote(2).reject
    assert not vote(1).reject
    assert (net.term(3), net.raft(3).vote) == (5, 1)
    assert net.storages[3].hard_state.vote == 1


# (voter's log terms from index 2, candidate's last (index, term), granted?)
UP_TO_DATE_CASES = [
    ([2, 2], (3, 2), True),    # identical logs
    ([2, 2], (4, 2), True),    # same last term, longer
    ([2, 2], (2, 2), False),   # same last term, shorter
    ([2, 2], (2, 3), True),    # higher last term wins even if shorter
    ([2, 3], (9, 2), False),   # lower last term loses even if much longer
    ([], (1, 1), True),        # both hold only the bootstrap entry
]


@pytest.mark.parametrize(("terms", "cand", "granted"), UP_TO_DATE_CASES)
def test_vote_only_for_up_to_date_log(terms, cand, granted):
    """§5.4.1: a voter denies its vote if its own log is more up-to-date: compare the last
    entries' terms first, then the lengths."""
    st = boot_storage([1, 2, 3], terms=terms)
    net = Network(3, storages={3: st}, pre_vote=False, check_quorum=False)
    index, term = cand
    [resp] = net.step_only(Message(type=MT.VOTE, frm=1, to=3, term=9, index=index,
                                   log_term=term))
    assert resp.reject is (not granted)
    assert net.raft(3).vote == (1 if granted else 0)


@pytest.mark.parametrize("kind", [MT.APP, MT.HEARTBEAT])
def test_candidate_steps_down_on_append_from_leader_of_its_term(kind):
    """§5.2: a candidate that receives AppendEntries from a leader of a term at least as
    large as its own recognizes that leader and returns to follower."""
    net = Network(3, pre_vote=False)
    net.isolate(1)
    net.campaign(1)
    assert net.role(1) is StateRole.CANDIDATE
    net.step_only(Message(type=kind, frm=2, to=1, term=net.term(1), index=1, log_term=1))
    assert net.role(1) is StateRole.FOLLOWER
    assert net.raft(1).lead == 2


def test_candidate_steps_down_on_higher_term():
    """§5.1/§5.2: a server that sees a higher term adopts it and reverts to follower."""
    net = Network(3, pre_vote=False)
    net.isolate(1)
    net.campaign(1)
    net.step_only(Message(type=MT.VOTE_RESP, frm=2, to=1, term=7, reject=True))
    assert (net.role(1), net.term(1), net.raft(1).vote) == (StateRole.FOLLOWER, 7, 0)


def test_split_vote_is_retried_with_a_new_election():
    """§5.2: when votes split no candidate wins; each times out after its own randomized
    timeout and a new election (next term) elects a leader."""
    net = Network(4, pre_vote=False, check_quorum=False)
    net.cut(1, 4)
    net.cut(3, 2)
    net.nodes[1].campaign()
    net.nodes[3].campaign()
    net.stabilize()
    assert net.leaders() == []
    assert net.role(1) is net.role(3) is StateRole.CANDIDATE
    assert net.term(1) == net.term(3) == 2
    net.recover()
    for _ in range(2 * ET):
        net.tick_all()
        if net.leaders():
            break
    [leader] = net.leaders()
    assert net.term(leader) >= 3


def test_pre_vote_keeps_partitioned_node_term():
    """Dissertation §9.6: a partitioned node that keeps timing out stays a pre-candidate
    and does not increase its term (without pre-vote the term grows every timeout)."""
    net = Network(3)
    net.elect(1)
    term = net.term(1)
    net.isolate(3)
    net.tick(3, 10 * ET)
    assert net.term(3) == term
    assert net.role(3) is StateRole.PRE_CANDIDATE

    plain = Network(3, pre_vote=False)
    plain.elect(1)
    plain.isolate(3)
    plain.tick(3, 10 * ET)
    assert plain.term(3) > term + 3


def test_pre_vote_rejoining_node_does_not_disrupt_leader():
    """Dissertation §9.6: when the partition heals, the node's pre-votes are refused (the
    others hear from the leader) and it rejoins as follower; the leader's term is kept."""
    net = Network(3)
    net.elect(1)
    term = net.term(1)
    net.isolate(3)
    net.tick(3, 5 * ET)
    net.recover()
    net.tick(3, 2 * ET)  # more pre-elections, now reaching 1 and 2
    assert net.leaders() == [1]
    assert net.term(1) == term
    net.tick(1)  # a heartbeat brings 3 back
    assert net.role(3) is StateRole.FOLLOWER
    assert net.raft(3).lead == 1
    net.propose(1, b"after")
    assert net.applied_data(3) == [b"after"]


def test_without_pre_vote_rejoining_node_disrupts_leader():
    """Contrast for the test above (dissertation §9.6, §4.2.3): with neither pre-vote nor
    check-quorum, the rejoining node's higher term deposes a healthy leader."""
    net = Network(3, pre_vote=False, check_quorum=False)
    net.elect(1)
    term = net.term(1)
    net.isolate(3)
    net.tick(3, 5 * ET)
    net.recover()
    net.tick(3, 2 * ET)
    assert net.term(1) > term


def test_check_quorum_leader_steps_down_when_isolated():
    """Dissertation §6.2 (check-quorum): a leader that has not heard from a quorum during
    an election timeout steps down. Activity is sampled once per election timeout, so
    an isolated leader steps down within two timeouts of losing contact (as in etcd)."""
    net = Network(3)
    net.elect(1)
    net.isolate(1)
    net.tick(1, 2 * ET)
    assert net.role(1) is StateRole.FOLLOWER
    assert net.raft(1).lead == 0


def test_check_quorum_connected_leader_keeps_leadership():
    """Dissertation §6.2: a leader that hears from a quorum never steps down; a leader
    without check-quorum never steps down even when isolated."""
    net = Network(3)
    net.elect(1)
    net.isolate(3)
    net.tick_all(5 * ET)  # 3 keeps pre-voting: it must not disturb anything
    assert net.leaders() == [1]

    plain = Network(3, check_quorum=False)
    plain.elect(1)
    plain.isolate(1)
    plain.tick(1, 5 * ET)
    assert plain.role(1) is StateRole.LEADER


def test_leader_stickiness_ignores_votes_while_leader_is_heard():
    """Dissertation §4.2.3: a follower that heard from its leader within the minimum
    election timeout ignores a RequestVote (no reply, no term change); once the timeout
    passes without the leader, it grants."""
    net = Network(3)
    net.elect(1)
    term = net.term(2)
    vote = Message(type=MT.VOTE, frm=3, to=2, term=term + 5, index=99, log_term=99)
    assert net.step_only(vote) == []
    assert net.term(2) == term
    net.isolate(2)
    for _ in range(ET):
        net.nodes[2].tick()
        if net.role(2) is not StateRole.FOLLOWER:
            break
    [resp] = [m for m in net.step_only(vote) if m.type is MT.VOTE_RESP]
    assert not resp.reject
    assert net.term(2) == term + 5


def test_without_check_quorum_votes_are_not_ignored():
    """Contrast (§5.2): without check-quorum a follower adopts any higher term at once."""
    net = Network(3, check_quorum=False)
    net.elect(1)
    term = net.term(2)
    vote = Message(type=MT.VOTE, frm=3, to=2, term=term + 5, index=99, log_term=99)
    [resp] = net.step_only(vote)
    assert not resp.reject
    assert net.term(2) == term + 5
