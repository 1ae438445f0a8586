"""Hand-written histories for the linearizability checker.

Timelines in the comments read left to right; ``|---|`` is an operation's interval and
``|--->`` one that never returned (indeterminate).
"""

from __future__ import annotations

import itertools

import pytest

from chaos.checkers import Outcome, check_key, check_linearizable
from chaos.history import EventType, History
from chaos.models import MutexModel, RegisterModel
from tests.chaos_checkers.gen import history_of, op_events

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO
_pids = itertools.count()


def w(v: int, call: int, ret: int | None, status: EventType = OK, key: str = "x"):
    return op_events(next(_pids), "write", key, v, call, ret, status, v)


def r(v: int | None, call: int, ret: int | None, status: EventType = OK, key: str = "x"):
    return op_events(next(_pids), "read", key, None, call, ret, status, v)


def cas(
    old: int,
    new: int,
    swapped: bool,
    call: int,
    ret: int | None,
    status: EventType = OK,
    key: str = "x",
):
    return op_events(next(_pids), "cas", key, (old, new), call, ret, status, swapped)


def check(h: History) -> Outcome:
    return check_linearizable(h, RegisterModel()).outcome


def test_empty_history_is_linearizable() -> None:
    result = check_linearizable(History([]), RegisterModel())
    assert result.outcome is Outcome.OK
    assert result.valid is True
    assert result.keys == ()


def test_sequential_history() -> None:
    assert (
        check(
            history_of(
                w(1, 0, 10),
                r(1, 20, 30),
                cas(1, 2, True, 40, 50),
                r(2, 60, 70),
                cas(1, 3, False, 80, 90),
                r(2, 100, 110),
            )
        )
        is Outcome.OK
    )


def test_read_concurrent_with_write_may_see_either_value() -> None:
    # w1 |----------|
    # r       |--|      reads 0 (before w1) or 1 (after): both fine
    for seen in (0, 1):
        h = history_of(w(0, 0, 5), w(1, 10, 40), r(seen, 20, 30))
        assert check(h) is Outcome.OK


def test_touching_operations_count_as_concurrent() -> None:
    # a read that starts at the instant a write ends may still precede it
    assert check(history_of(w(0, 0, 5), w(1, 10, 20), r(0, 20, 30))) is Outcome.OK


def test_stale_read_is_rejected_with_a_window() -> None:
    # w1 |--|  w2 |--|  r |--| reads 1: stale
    h = history_of(w(1, 0, 10), w(2, 20, 30), r(1, 40, 50), w(3, 60, 70))
    result = check_linearizable(h, RegisterModel())
    assert result.outcome is Outcome.ILLEGAL
    assert result.valid is False
    (failure,) = result.failures
    assert failure.key == "x"
    assert [op.input for op in failure.prefix] == [1, 2]
    assert failure.state == "2"
    assert failure.stuck.f == "read"
    assert failure.stuck.output == 1
    assert failure.concurrent == ()
    text = result.render()
    assert "key 'x' is not linearizable" in text
    assert "! #2 p" in text
    assert "read -> 1" in text


def test_lost_write_is_rejected() -> None:
    # an acknowledged write, then every later read misses it
    h = history_of(w(1, 0, 10), r(1, 20, 30), w(2, 40, 50), r(1, 60, 70))
    assert check(h) is Outcome.ILLEGAL
    assert check(history_of(w(5, 0, 10), r(None, 20, 30))) is Outcome.ILLEGAL


def test_window_lists_the_concurrent_candidates() -> None:
    # cas |----------------|   (cannot apply: the value is never 5)
    # r       |---|  reads 9
    h = history_of(w(1, 0, 5), cas(5, 6, True, 10, 100), r(9, 20, 30))
    (failure,) = check_linearizable(h, RegisterModel()).failures
    assert failure.stuck.output == 9
    assert [op.f for op in failure.prefix] == ["write"]
    assert [op.input for op in failure.concurrent] == [(5, 6)]
    assert [op.f for op in failure.window()] == ["write", "cas", "read"]


def test_window_marks_prefix_operations_concurrent_with_the_stuck_one() -> None:
    # w2 |----------------|   (linearized in the prefix, concurrent with the read)
    # r       |---|  reads 9
    h = history_of(w(1, 0, 5), w(2, 10, 100), r(9, 20, 30))
    (failure,) = check_linearizable(h, RegisterModel()).failures
    assert [op.input for op in failure.prefix] == [1, 2]
    assert failure.concurrent == ()
    lines = failure.render().splitlines()
    assert any(line.startswith("  ~ ") and "write 2" in line for line in lines)
    assert any(line.startswith("    ") and "write 1" in line for line in lines)


def test_two_cas_from_the_same_value_cannot_both_succeed() -> None:
    h = history_of(w(0, 0, 5), cas(0, 1, True, 10, 30), cas(0, 2, True, 15, 35))
    assert check(h) is Outcome.ILLEGAL


def test_cas_that_failed_although_the_value_matched_is_rejected() -> None:
    assert check(history_of(w(0, 0, 5), cas(0, 1, False, 10, 20))) is Outcome.ILLEGAL


def test_cas_that_swapped_a_value_never_there_is_rejected() -> None:
    assert check(history_of(w(0, 0, 5), cas(3, 1, True, 10, 20))) is Outcome.ILLEGAL


def test_read_after_successful_cas_must_see_the_new_value() -> None:
    h = history_of(w(0, 0, 5), cas(0, 1, True, 10, 20), r(0, 30, 40))
    assert check(h) is Outcome.ILLEGAL
    ok = history_of(w(0, 0, 5), cas(0, 1, True, 10, 20), r(1, 30, 40))
    assert check(ok) is Outcome.OK


def test_concurrent_cas_chain_needs_the_right_order() -> None:
    # both cas overlap; only cas(0,1) then cas(1,2) explains the final read
    h = history_of(w(0, 0, 5), cas(1, 2, True, 10, 40), cas(0, 1, True, 12, 38), r(2, 50, 60))
    assert check(h) is Outcome.OK


def test_indeterminate_write_that_must_be_assumed_applied() -> None:
    # w1 |------------>   (timed out: info)
    # r           |--| reads 1: only the indeterminate write explains it
    h = history_of(w(0, 0, 5), w(1, 10, 20, INFO), r(1, 30, 40))
    assert check(h) is Outcome.OK
    # same with no completion event at all (client crashed)
    assert check(history_of(w(0, 0, 5), w(1, 10, None), r(1, 30, 40))) is Outcome.OK


def test_indeterminate_write_that_must_be_assumed_not_applied() -> None:
    # w1 |------------>   never observed: it may never have happened
    h = history_of(w(0, 0, 5), w(1, 10, 20, INFO), r(0, 30, 40), r(0, 50, 60))
    assert check(h) is Outcome.OK


def test_indeterminate_write_may_apply_late_but_only_once() -> None:
    # it may take effect long after the client gave up...
    late = history_of(w(0, 0, 5), w(1, 10, 20, INFO), r(0, 30, 40), r(1, 50, 60))
    assert check(late) is Outcome.OK
    # ...but once seen it cannot be undone without another write
    undone = history_of(w(0, 0, 5), w(1, 10, 20, INFO), r(1, 30, 40), r(0, 50, 60))
    assert check(undone) is Outcome.ILLEGAL


def test_indeterminate_write_cannot_take_effect_before_its_invocation() -> None:
    h = history_of(w(0, 0, 5), r(1, 10, 20), w(1, 30, 40, INFO))
    assert check(h) is Outcome.ILLEGAL


def test_failed_write_definitely_did_not_happen() -> None:
    assert check(history_of(w(0, 0, 5), w(1, 10, 20, FAIL), r(1, 30, 40))) is Outcome.ILLEGAL
    assert check(history_of(w(0, 0, 5), w(1, 10, 20, FAIL), r(0, 30, 40))) is Outcome.OK


def test_indeterminate_reads_constrain_nothing() -> None:
    h = history_of(w(0, 0, 5), r(None, 10, 20, INFO), r(0, 30, 40))
    result = check_linearizable(h, RegisterModel())
    assert result.outcome is Outcome.OK
    assert result.keys[0].operations == 2  # the indeterminate read was dropped


def test_indeterminate_cas_may_or_may_not_have_swapped() -> None:
    applied = history_of(w(0, 0, 5), cas(0, 1, False, 10, 20, INFO), r(1, 30, 40))
    skipped = history_of(w(0, 0, 5), cas(0, 1, False, 10, 20, INFO), r(0, 30, 40))
    impossible = history_of(w(0, 0, 5), cas(7, 1, False, 10, 20, INFO), r(1, 30, 40))
    assert check(applied) is Outcome.OK
    assert check(skipped) is Outcome.OK
    assert check(impossible) is Outcome.ILLEGAL


def test_keys_are_checked_independently() -> None:
    h = history_of(
        w(1, 0, 10, key="a"),
        r(1, 20, 30, key="a"),
        w(1, 0, 10, key="b"),
        r(2, 20, 30, key="b"),
        w(2, 0, 10, key="c"),
        r(2, 20, 30, key="c"),
    )
    result = check_linearizable(h, RegisterModel())
    assert result.outcome is Outcome.ILLEGAL
    assert {k.key: k.outcome for k in result.keys} == {
        "a": Outcome.OK,
        "b": Outcome.ILLEGAL,
        "c": Outcome.OK,
    }
    assert [f.key for f in result.failures] == ["b"]
    assert "3 keys: 2 ok, 1 illegal, 0 unknown" in result.render()
    # without partitioning, "a" and "b" are one register: a read of 1 after w2 is stale
    assert check_linearizable(h, RegisterModel(), partition=False).outcome is Outcome.ILLEGAL


def test_fail_fast_stops_at_the_first_illegal_key() -> None:
    h = history_of(r(5, 0, 10, key="a"), r(5, 0, 10, key="b"))
    assert len(check_linearizable(h, RegisterModel(), fail_fast=True).keys) == 1
    assert len(check_linearizable(h, RegisterModel()).keys) == 2


def _hard_history(n: int) -> History:
    """n concurrent writes of distinct values, then reads no order can explain."""
    writes = [w(i, 0, 1000, INFO) for i in range(n)]
    return history_of(
        *writes, r(0, 2000, 2010), r(1, 2020, 2030), r(0, 2040, 2050), r(99, 2060, 2070)
    )


def test_step_limit_gives_unknown_instead_of_hanging() -> None:
    result = check_linearizable(_hard_history(12), RegisterModel(), max_steps_per_key=1000)
    assert result.outcome is Outcome.UNKNOWN
    assert result.valid is None
    assert result.keys[0].steps == 1000
    assert "step limit" in (result.keys[0].reason or "")
    assert "unknown (step limit" in result.render()


def test_time_budget_uses_the_injected_clock() -> None:
    ticks = itertools.count()

    def clock() -> float:
        return float(next(ticks))

    result = check_linearizable(_hard_history(12), RegisterModel(), time_budget_s=3, clock=clock)
    assert result.outcome is Outcome.UNKNOWN
    assert result.keys[0].reason == "time budget exhausted"
    with pytest.raises(ValueError, match="clock"):
        check_linearizable(_hard_history(2), RegisterModel(), time_budget_s=1)


def test_small_hard_history_is_decided() -> None:
    assert check(_hard_history(4)) is Outcome.ILLEGAL


def test_check_key_on_raw_operations() -> None:
    h = history_of(w(1, 0, 10), r(1, 20, 30))
    result = check_key("x", h.operations, RegisterModel())
    assert result.outcome is Outcome.OK
    assert result.operations == 2
    assert result.failure is None


def test_mutex_model_through_the_checker() -> None:
    def op(f: str, call: int, ret: int):
        return op_events(next(_pids), f, "lock", None, call, ret)

    ok = history_of(op("acquire", 0, 10), op("release", 20, 30), op("acquire", 25, 40))
    bad = history_of(op("acquire", 0, 10), op("acquire", 20, 30), op("release", 40, 50))
    assert check_linearizable(ok, MutexModel()).outcome is Outcome.OK
    assert check_linearizable(bad, MutexModel()).outcome is Outcome.ILLEGAL


def test_indeterminate_operation_the_model_can_never_apply_is_left_out() -> None:
    # the register model accepts any indeterminate write at the end; a mutex does not
    # accept a second acquire while held, so this needs "may never take effect"
    def op(f: str, call: int, ret: int | None, status: EventType = OK):
        return op_events(next(_pids), f, "lock", None, call, ret, status)

    h = history_of(op("acquire", 0, 10), op("acquire", 20, 30, INFO), op("acquire", 40, None))
    assert check_linearizable(h, MutexModel()).outcome is Outcome.OK
    held_twice = history_of(
        op("acquire", 0, 10), op("acquire", 20, 30, INFO), op("acquire", 40, 50)
    )
    assert check_linearizable(held_twice, MutexModel()).outcome is Outcome.ILLEGAL
