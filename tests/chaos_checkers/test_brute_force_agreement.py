"""The linearizability checker agrees with an exhaustive checker on thousands of small
random histories (seeded; complements the Hypothesis property in
test_linearizable_properties.py). Histories mix ok / fail / info operations with
overlapping intervals on one register, so both verdicts occur often."""

from __future__ import annotations

import random

from chaos.checkers import check_linearizable
from chaos.history import EventType, History, Value
from chaos.models import RegisterModel
from tests.chaos_checkers.gen import brute_force_linearizable, history_of, op_events

STATUSES = [EventType.OK] * 3 + [EventType.INFO, EventType.FAIL]


def random_history(rng: random.Random) -> History:
    ops = []
    for pid in range(rng.randint(0, 7)):
        f = rng.choice(["read", "write", "cas"])
        a, b = rng.randint(0, 2), rng.randint(0, 2)
        call = rng.randint(0, 30)
        status = rng.choice(STATUSES)
        inp: Value = None if f == "read" else a if f == "write" else (a, b)
        out: Value = {"read": rng.choice([None, 0, 1, 2]), "write": a,
                      "cas": rng.random() < 0.5}[f]
        ops.append(op_events(pid, f, "k", inp, call, call + rng.randint(0, 12), status, out))
    return history_of(*ops)


def test_agrees_with_brute_force_on_3000_random_histories() -> None:
    rng = random.Random(20240601)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        h = random_history(rng)
        expected = brute_force_linearizable(h.operations, RegisterModel())
        got = check_linearizable(h, RegisterModel()).valid
        assert got is expected, h.dumps()
        verdicts[expected] += 1
    assert min(verdicts.values()) > 300, verdicts  # both verdicts well represented
