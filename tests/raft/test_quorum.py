"""Quorum arithmetic checked against a naive reference (Raft §5.2 majority votes, §5.3
commit by majority replication), in the spirit of etcd-io/raft's ``quorum/quick_test.go``."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from raftkv.raft.quorum import VoteResult, committed_index, majority, vote_result

ids = st.integers(min_value=1, max_value=9)
voter_sets = st.frozensets(ids, max_size=7)


def naive_committed_index(voters: frozenset[int], acked: dict[int, int]) -> int:
    """The largest index that more than half of the voters have acknowledged."""
    best = 0
    for candidate in {0, *acked.values()}:
        holders = sum(1 for v in voters if acked.get(v, 0) >= candidate)
        if voters and 2 * holders > len(voters):
            best = max(best, candidate)
    return best


def naive_vote_result(voters: frozenset[int], votes: dict[int, bool]) -> VoteResult:
    """Try every way the missing votes could go: WON if all outcomes win, LOST if none."""
    pending = [v for v in voters if v not in votes]
    outcomes = set()
    for choice in itertools.product([True, False], repeat=len(pending)):
        final = {v: votes[v] for v in voters if v in votes} | dict(zip(pending, choice,
                                                                        strict=True))
        outcomes.add(2 * sum(final.values()) > len(voters))
    if outcomes == {True}:
        return VoteResult.WON
    if outcomes == {False}:
        return VoteResult.LOST
    return VoteResult.PENDING


@given(voters=voter_sets, acked=st.dictionaries(ids, st.integers(0, 20), max_size=9))
def test_committed_index_matches_naive(voters, acked):
    """§5.3: an index is committed once a majority of the voters hold it; acks from
    non-voters do not count, and a voter that never acked counts as index 0."""
    assert committed_index(voters, acked) == naive_committed_index(voters, acked)


@given(voters=voter_sets, votes=st.dictionaries(ids, st.booleans(), max_size=9))
def test_vote_result_matches_naive(voters, votes):
    """§5.2: a candidate wins with votes from a majority of the voters, loses as soon as
    that can no longer happen; votes of non-voters are ignored."""
    assert vote_result(voters, votes) == naive_vote_result(voters, votes)


def test_majority_examples():
    """§5.2: a majority of n voters is floor(n/2) + 1."""
    assert [majority(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]
