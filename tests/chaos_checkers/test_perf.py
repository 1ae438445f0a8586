"""A history the size of a real chaos run: 10,000 operations, 50 keys, 10 clients.

Only correctness is asserted (no timing): the figure is measured separately.
"""

from __future__ import annotations

import random

import pytest

from chaos.checkers import Outcome, check_linearizable
from chaos.history import EventType
from chaos.models import RegisterModel
from tests.chaos_checkers.gen import replace_op, simulate_registers


@pytest.mark.slow
def test_ten_thousand_operations_over_fifty_keys() -> None:
    rng = random.Random(20240601)
    h = simulate_registers(rng, n_ops=10_000, n_keys=50, n_procs=10, p_info=0.03, p_fail=0.02)
    assert len(h) == 10_000
    result = check_linearizable(h, RegisterModel())
    assert result.outcome is Outcome.OK
    assert len(result.keys) == 50

    reads = [o for o in h.operations if o.f == "read" and o.status is EventType.OK]
    victim = reads[len(reads) // 2]
    bad = check_linearizable(replace_op(h, victim.index, output=99), RegisterModel())
    assert bad.outcome is Outcome.ILLEGAL
    assert [f.key for f in bad.failures] == [victim.key]
    assert sum(k.outcome is Outcome.OK for k in bad.keys) == 49
