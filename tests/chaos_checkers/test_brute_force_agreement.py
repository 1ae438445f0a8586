"""The linearizability checker agrees with an exhaustive checker on thousands of small
random histories (seeded; complements the Hypothesis property in
test_linearizable_properties.py).

Each history has a few clients, and each client runs *several operations one after
another* (its next invocation only after its previous completion), so the per-process
real-time order -- not only the overlap of different processes -- constrains the search.
A client whose operation ends ``info`` comes back as a new process (the old operation may
still be in flight), as in Jepsen. Half the histories get their outputs from a simulated
register (each operation takes effect at a random instant of its interval; an ``info``
one half the time, a ``fail`` one never), one output in three of those then replaced at
random; the other half get random outputs. Both verdicts occur often."""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos.checkers import check_linearizable
from chaos.history import EventType, History, Value
from chaos.models import RegisterModel
from tests.chaos_checkers.gen import brute_force_linearizable, history_of, op_events

OK, INFO, FAIL = EventType.OK, EventType.INFO, EventType.FAIL
STATUSES = [OK] * 4 + [INFO, FAIL]
MAX_OPS = 10  # the brute-force search has no memo: keep it small


@dataclass
class _Op:
    process: int
    f: str
    inp: Value
    call: int
    ret: int
    status: EventType
    out: Value = None


def _skeleton(rng: random.Random) -> tuple[list[_Op], int]:
    """1-4 clients, each running 1-4 sequential operations (at most :data:`MAX_OPS` in
    all); also returns the longest run of one process."""
    ops: list[_Op] = []
    clients = rng.randint(1, 4)
    longest = 0
    for c in range(clients):
        process, at, run = c, rng.randint(0, 10), 0
        for _ in range(rng.randint(1, 4)):
            if len(ops) >= MAX_OPS:
                break
            f = rng.choice(["read", "read", "write", "cas"])
            a, b = rng.randint(0, 2), rng.randint(0, 2)
            inp: Value = None if f == "read" else a if f == "write" else (a, b)
            op = _Op(process, f, inp, at, at + rng.randint(0, 12), rng.choice(STATUSES))
            ops.append(op)
            run += 1
            longest = max(longest, run)
            at = op.ret + rng.randint(0, 6)
            if op.status is INFO:  # the client comes back as a new process
                process, run = process + clients, 0
    return ops, longest


def _random_output(rng: random.Random, op: _Op) -> Value:
    return {"read": rng.choice([None, 0, 1, 2]), "write": op.inp,
            "cas": rng.random() < 0.5}[op.f]


def _simulate(rng: random.Random, ops: list[_Op]) -> None:
    """Outputs of a real register: each applied op takes effect inside its interval."""
    applied = [(rng.uniform(op.call, op.ret + (20 if op.status is INFO else 0)), i)
               for i, op in enumerate(ops)
               if op.status is OK or (op.status is INFO and rng.random() < 0.5)]
    register: Value = None
    for _, i in sorted(applied):
        op = ops[i]
        if op.f == "read":
            op.out = register
        elif op.f == "write":
            register = op.out = op.inp
        else:
            assert isinstance(op.inp, tuple)
            op.out = register == op.inp[0]
            if op.out:
                register = op.inp[1]


def random_history(rng: random.Random) -> tuple[History, int]:
    ops, longest = _skeleton(rng)
    if rng.random() < 0.5:
        _simulate(rng, ops)
        oks = [op for op in ops if op.status is OK]
        if oks and rng.random() < 1 / 3:
            victim = rng.choice(oks)
            victim.out = _random_output(rng, victim)
    else:
        for op in ops:
            op.out = _random_output(rng, op)
    events = [op_events(op.process, op.f, "k", op.inp, op.call, op.ret, op.status, op.out)
              for op in ops]
    return history_of(*events), longest


def test_agrees_with_brute_force_on_6000_sequential_process_histories() -> None:
    rng = random.Random(20240601)
    verdicts = {True: 0, False: 0}
    multi = 0  # histories where some process ran 3+ operations in sequence
    for _ in range(6000):
        h, longest = random_history(rng)
        expected = brute_force_linearizable(h.operations, RegisterModel())
        got = check_linearizable(h, RegisterModel()).valid
        assert got is expected, h.dumps()
        verdicts[expected] += 1
        multi += longest >= 3
    assert min(verdicts.values()) > 2000, verdicts  # both verdicts well represented
    assert multi > 2500, multi
