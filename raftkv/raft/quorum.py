"""Majority quorum arithmetic, pure functions over a voter set."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(n: int) -> int:
    """The size of a majority of ``n`` voters."""
    return n // 2 + 1


def committed_index(voters: Collection[int], acked: Mapping[int, int]) -> int:
    """The largest index acknowledged by a majority of ``voters`` (Raft §5.3).

    A voter missing from ``acked`` counts as having acknowledged index 0. With no voters
    the result is 0 (nothing can commit without a quorum).
    """
    if not voters:
        return 0
    matched = sorted((acked.get(v, 0) for v in voters), reverse=True)
    return matched[majority(len(voters)) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer be reached."""
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    need = majority(len(voters))
    if granted >= need:
        return VoteResult.WON
    if len(voters) - rejected < need:
        return VoteResult.LOST
    return VoteResult.PENDING
