"""Property tests: generated histories, mutations, and a brute-force oracle."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chaos.checkers import Outcome, check_linearizable
from chaos.history import EventType, History, Value
from chaos.models import RegisterModel
from tests.chaos_checkers.gen import (
    brute_force_linearizable,
    history_of,
    op_events,
    replace_op,
    simulate_registers,
)

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO
NEVER_WRITTEN = 99  # the generators only write 0..4

sim_params = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32),
        "n_ops": st.integers(1, 120),
        "n_keys": st.integers(1, 4),
        "n_procs": st.integers(1, 6),
        "p_info": st.sampled_from([0.0, 0.05, 0.15]),
        "p_fail": st.sampled_from([0.0, 0.1]),
    }
)


def _simulate(params: dict[str, int | float]) -> History:
    p = dict(params)
    return simulate_registers(
        random.Random(p.pop("seed")),
        n_ops=int(p["n_ops"]),
        n_keys=int(p["n_keys"]),
        n_procs=int(p["n_procs"]),
        p_info=float(p["p_info"]),
        p_fail=float(p["p_fail"]),
    )


@settings(max_examples=150, deadline=None)
@given(sim_params)
def test_histories_of_a_real_sequential_execution_are_linearizable(params) -> None:
    h = _simulate(params)
    result = check_linearizable(h, RegisterModel())
    assert result.outcome is Outcome.OK, result.render()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(sim_params, st.randoms(use_true_random=False))
def test_a_read_of_a_value_never_written_is_rejected(params, rng: random.Random) -> None:
    h = _simulate(params)
    reads = [o for o in h.operations if o.f == "read" and o.status is OK]
    assume(reads)
    victim = rng.choice(reads)
    result = check_linearizable(replace_op(h, victim.index, output=NEVER_WRITTEN), RegisterModel())
    assert result.outcome is Outcome.ILLEGAL
    assert [f.key for f in result.failures] == [victim.key]
    assert victim.index not in {op.index for op in result.failures[0].prefix}


@settings(max_examples=100, deadline=None)
@given(sim_params, st.randoms(use_true_random=False))
def test_a_cas_that_swapped_a_value_never_written_is_rejected(params, rng) -> None:
    h = _simulate(params)
    swaps = [o for o in h.operations if o.f == "cas" and o.status is OK and o.output is True]
    assume(swaps)
    victim = rng.choice(swaps)
    assert isinstance(victim.input, tuple)
    mutated = replace_op(h, victim.index, input=(NEVER_WRITTEN, victim.input[1]))
    assert check_linearizable(mutated, RegisterModel()).outcome is Outcome.ILLEGAL


# --- small random histories against an exhaustive oracle --------------------------------

small_op = st.tuples(
    st.sampled_from(["read", "write", "cas"]),
    st.integers(0, 2),  # value / expected
    st.integers(0, 2),  # new value for cas
    st.integers(0, 30),  # call
    st.integers(0, 12),  # duration
    st.sampled_from([OK, OK, OK, INFO, FAIL]),
    st.one_of(st.none(), st.integers(0, 2), st.booleans()),  # claimed output
)


def _small_history(raw: list[tuple[str, int, int, int, int, EventType, Value]]) -> History:
    ops = []
    for pid, (f, a, b, call, dur, status, out) in enumerate(raw):
        inp: Value = None if f == "read" else a if f == "write" else (a, b)
        if f == "write":
            out = a
        elif f == "cas" and not isinstance(out, bool):
            out = out == 0
        elif f == "read" and isinstance(out, bool):
            out = None
        ops.append(op_events(pid, f, "k", inp, call, call + dur, status, out))
    return history_of(*ops)


@settings(max_examples=600, deadline=None)
@given(st.lists(small_op, min_size=0, max_size=7))
def test_agrees_with_brute_force_on_small_histories(raw) -> None:
    h = _small_history(raw)
    expected = brute_force_linearizable(h.operations, RegisterModel())
    result = check_linearizable(h, RegisterModel())
    assert result.valid is expected, h.dumps()


@settings(max_examples=200, deadline=None)
@given(st.lists(small_op, min_size=0, max_size=7))
def test_jsonl_round_trip_preserves_the_verdict(raw) -> None:
    h = _small_history(raw)
    again = History.loads(h.dumps())
    assert (
        check_linearizable(again, RegisterModel()).outcome
        is check_linearizable(h, RegisterModel()).outcome
    )
