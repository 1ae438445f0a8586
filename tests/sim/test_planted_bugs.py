"""The simulator can fail: each bug planted in the core is found within a stated number of
seeds. The seed that first catches each bug (with the current simulator) is noted; if the
simulator changes, the seed may move, but the bound must hold.

| bug | nodes | first catching seed | property violated |
|---|---|---|---|
| (a) commit a previous-term entry by counting | 3 | 7 | leader completeness |
| (b) grant a vote before it is persisted | 5 | 47 | leader completeness (or double vote) |
| (c) skip the previous index/term check | 5 | 1 | log matching |
| (d) allow two pending membership changes | 5 | 1 | one pending change |
| (e) serve ReadIndex without a heartbeat round | 5 | 4 | linearizable read |
"""

from __future__ import annotations

import pytest

from chaos.sim import SimConfig, Simulator, Violation
from tests.sim.bugs import PLANTED

SAFETY = ("election safety", "double vote", "leader completeness", "state machine safety")
CASES = [
    # (bug, nodes, seed bound, the violation must name one of these properties)
    ("a-commit-previous-term", 3, 200, ("leader completeness", "state machine safety")),
    ("b-vote-before-persist", 5, 150, SAFETY),
    ("c-skip-append-check", 5, 30, ("log matching", *SAFETY)),
    ("d-two-pending-conf-changes", 5, 10, ("membership change",)),
    ("e-read-index-without-heartbeat", 5, 30, ("stale read",)),
]


def first_violation(bug: str, nodes: int, bound: int) -> tuple[int, Violation] | None:
    with PLANTED[bug]():
        for seed in range(1, bound + 1):
            try:
                Simulator(SimConfig(seed=seed, nodes=nodes)).run()
            except Violation as v:
                return seed, v
    return None


@pytest.mark.parametrize(("bug", "nodes", "bound", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_simulator_finds_planted_bug(bug: str, nodes: int, bound: int,
                                     words: tuple[str, ...]) -> None:
    found = first_violation(bug, nodes, bound)
    assert found is not None, f"{bug}: no violation within {bound} seeds"
    seed, violation = found
    assert any(w in violation.what for w in words), f"seed {seed}: {violation.what}"
    assert violation.trace


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_patch_is_removed_after_use(bug: str) -> None:
    """The planted bug lives only inside its context manager."""
    with PLANTED[bug]():
        pass
    Simulator(SimConfig(seed=1, nodes=3, ticks=600, heal_ticks=200)).run()
