"""Partition shapes: which directed links each nemesis mode cuts."""

from __future__ import annotations

import random

import pytest

from chaos.nemesis import PARTITIONS, partition_links


def components(n: int, cut: set[tuple[int, int]]) -> list[set[int]]:
    """Who each member can reach directly."""
    return [{j for j in range(n) if j != i and (i, j) not in cut} | {i} for i in range(n)]


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("mode", PARTITIONS)
def test_cuts_are_symmetric_and_never_self(mode: str, n: int) -> None:
    cut = partition_links(mode, n, random.Random(n), leader=0)
    assert all((b, a) in cut for a, b in cut)
    assert all(a != b for a, b in cut)


@pytest.mark.parametrize("n", [3, 5])
def test_halves_leave_exactly_one_majority(n: int) -> None:
    reach = components(n, partition_links("halves", n, random.Random(1), leader=None))
    majorities = {frozenset(r) for r in reach if len(r) > n // 2}
    assert len(majorities) == 1
    assert any(len(r) <= n // 2 for r in reach)


def test_leader_mode_isolates_the_leader() -> None:
    reach = components(5, partition_links("leader", 5, random.Random(2), leader=3))
    assert reach[3] == {3}
    assert all(r == {0, 1, 2, 4} for i, r in enumerate(reach) if i != 3)


def test_majority_ring_gives_everyone_a_different_majority() -> None:
    reach = components(5, partition_links("ring", 5, random.Random(3), leader=None))
    assert all(len(r) == 3 for r in reach)
    assert len({frozenset(r) for r in reach}) == 5


def test_bridge_has_one_member_that_sees_everyone() -> None:
    reach = components(5, partition_links("bridge", 5, random.Random(4), leader=None))
    assert sum(len(r) == 5 for r in reach) == 1
    assert sorted(len(r) for r in reach) == [3, 3, 3, 3, 5]
