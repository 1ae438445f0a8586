"""History generators and a brute-force reference checker for the checker tests.

:func:`simulate_registers` runs concurrent simulated clients against real sequential
registers: each operation takes effect at a random instant inside its [call, return]
interval, in that order, so the recorded history is linearizable by construction.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from chaos.history import Event, EventType, History, Key, Operation, Process, Value
from chaos.models import UNKNOWN, Input, Model, Output

S = TypeVar("S", bound=Hashable)
INVOKE, OK, FAIL, INFO = EventType.INVOKE, EventType.OK, EventType.FAIL, EventType.INFO


def op_events(
    process: Process,
    f: str,
    key: Key,
    inp: Value,
    call: int,
    ret: int | None,
    status: EventType = OK,
    out: Value = None,
) -> list[Event]:
    """The invoke event and (unless ``ret`` is None) the completion of one operation."""
    events = [Event(INVOKE, process, call, f, key, inp)]
    if ret is not None:
        events.append(
            Event(
                status,
                process,
                ret,
                f,
                key,
                out if status is OK else None,
                None if status is OK else "boom",
            )
        )
    return events


def history_of(*ops: list[Event]) -> History:
    """Merges per-operation event lists into one history, ordered by time."""
    events = [e for evs in ops for e in evs]
    order = sorted(range(len(events)), key=lambda i: (events[i].time, i))
    return History(events[i] for i in order)


@dataclass(slots=True)
class _Planned:
    process: Process
    f: str
    key: str
    inp: Value
    call: int
    lin: int
    ret: int
    status: EventType
    applied: bool
    out: Value = None


def _plan(
    rng: random.Random, n_ops: int, n_keys: int, n_procs: int, p_info: float, p_fail: float
) -> list[_Planned]:
    free_at = [0] * n_procs
    ids: list[Process] = list(range(n_procs))
    planned: list[_Planned] = []
    for _ in range(n_ops):
        slot = rng.randrange(n_procs)
        call = free_at[slot] + rng.randint(0, 2_000)
        ret = call + rng.randint(1, 20_000)
        free_at[slot] = ret + 1
        r = rng.random()
        status = INFO if r < p_info else FAIL if r < p_info + p_fail else OK
        applied = status is OK or (status is INFO and rng.random() < 0.5)
        f = rng.choice(("read", "read", "write", "write", "cas"))
        v1, v2 = rng.randrange(5), rng.randrange(5)
        inp: Value = None if f == "read" else v1 if f == "write" else (v1, v2)
        planned.append(
            _Planned(
                ids[slot],
                f,
                f"k{rng.randrange(n_keys)}",
                inp,
                call,
                rng.randint(call, ret),
                ret,
                status,
                applied,
            )
        )
        if status is INFO:  # like Jepsen: a crashed client comes back as a new process
            ids[slot] = int(ids[slot]) + n_procs
    return planned


def _execute(planned: Sequence[_Planned]) -> None:
    registers: dict[str, Value] = {}
    for p in sorted(planned, key=lambda p: p.lin):
        if not p.applied:
            continue
        cur = registers.get(p.key)
        if p.f == "read":
            p.out = cur
        elif p.f == "write":
            registers[p.key] = p.out = p.inp
        else:
            assert isinstance(p.inp, tuple)
            p.out = cur == p.inp[0]
            if p.out:
                registers[p.key] = p.inp[1]


def simulate_registers(
    rng: random.Random,
    *,
    n_ops: int,
    n_keys: int,
    n_procs: int,
    p_info: float = 0.0,
    p_fail: float = 0.0,
) -> History:
    """A linearizable register history from simulated concurrent clients.

    Args:
        rng: the randomness.
        n_ops: operations in total.
        n_keys: keys ``k0`` .. ``k{n-1}``.
        n_procs: concurrent clients.
        p_info: probability an operation times out (half of those still take effect).
        p_fail: probability an operation fails (and does not take effect).
    """
    planned = _plan(rng, n_ops, n_keys, n_procs, p_info, p_fail)
    _execute(planned)
    return history_of(
        *(op_events(p.process, p.f, p.key, p.inp, p.call, p.ret, p.status, p.out) for p in planned)
    )


def replace_op(history: History, index: int, **changes: Value) -> History:
    """A copy of the history with operation ``index``'s input/output replaced."""
    ops = list(history.operations)
    old = ops[index]
    ops[index] = Operation(
        index=old.index,
        process=old.process,
        f=old.f,
        key=old.key,
        input=changes.get("input", old.input),
        output=changes.get("output", old.output),
        call=old.call,
        ret=old.ret,
        status=old.status,
        error=old.error,
        invoke_index=old.invoke_index,
        complete_index=old.complete_index,
    )
    return History.from_operations(ops)


def brute_force_linearizable(ops: Sequence[Operation], model: Model[S]) -> bool:
    """Exhaustive check (no memoisation) for tiny histories: tries every order that
    respects real time, with ``info`` operations optional and ``fail`` ones dropped."""
    live = [op for op in ops if op.status is not FAIL]

    def out(op: Operation) -> Output:
        return op.output if op.status is OK else UNKNOWN

    def search(state: S, remaining: frozenset[int]) -> bool:
        if all(math.isinf(live[i].ret) for i in remaining):
            return True
        for i in remaining:
            c = live[i]
            if any(live[j].ret < c.call for j in remaining if j != i):
                continue
            ok, new = model.step(state, Input(c.f, c.input), out(c))
            if ok and search(new, remaining - {i}):
                return True
        return False

    return search(model.init(), frozenset(range(len(live))))
