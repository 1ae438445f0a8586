"""The bank checker."""

from __future__ import annotations

import itertools

from chaos.checkers import check_bank
from chaos.checkers.bank import BankAnomalyKind
from chaos.history import EventType, History, Value
from tests.chaos_checkers.gen import history_of, op_events

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO
ACCOUNTS = ("a", "b", "c")
_t = itertools.count(0, 10)
_p = itertools.count()


def read(balances: Value, status: EventType = OK):
    t = next(_t)
    return op_events(next(_p), "read", None, None, t, t + 5, status, balances)


def transfer(src: str, dst: str, amount: int, status: EventType = OK):
    t = next(_t)
    v: Value = {"from": src, "to": dst, "amount": amount}
    return op_events(next(_p), "transfer", None, v, t, t + 5, status, v)


def check(h: History, **kw: object):
    return check_bank(h, total=30, accounts=ACCOUNTS, **kw)  # type: ignore[arg-type]


def test_conserved_total_is_valid() -> None:
    h = history_of(
        read({"a": 10, "b": 10, "c": 10}),
        transfer("a", "b", 5),
        read({"a": 5, "b": 15, "c": 10}),
        transfer("b", "c", 15, INFO),
        read({"a": 5, "b": 0, "c": 25}),
        read({"a": 999}, FAIL),
    )
    result = check(h)
    assert result.valid
    assert result.reads == 3
    assert result.anomalies == ()
    assert "bank: OK — 3 reads checked, 0 anomalies" in result.render()


def test_wrong_total_is_reported() -> None:
    # a transfer applied half-way: money created out of nothing
    h = history_of(read({"a": 10, "b": 10, "c": 10}), read({"a": 5, "b": 15, "c": 15}))
    result = check(h)
    assert not result.valid
    (anomaly,) = result.anomalies
    assert anomaly.kind is BankAnomalyKind.WRONG_TOTAL
    assert anomaly.op.index == 1
    assert "sum to 35, expected 30" in result.render()


def test_negative_balance_is_reported_unless_allowed() -> None:
    h = history_of(read({"a": -5, "b": 25, "c": 10}))
    (anomaly,) = check(h).anomalies
    assert anomaly.kind is BankAnomalyKind.NEGATIVE
    assert "'a': -5" in anomaly.detail
    assert check(h, allow_negative=True).valid


def test_missing_and_unexpected_accounts() -> None:
    h = history_of(read({"a": 10, "b": 20}), read({"a": 10, "b": 10, "c": 5, "d": 5}))
    kinds = [a.kind for a in check(h).anomalies]
    assert kinds == [BankAnomalyKind.MISSING_ACCOUNT, BankAnomalyKind.UNEXPECTED_ACCOUNT]
    assert check_bank(h, total=30).valid  # without an account list only totals matter


def test_malformed_reads() -> None:
    h = history_of(
        read(None), read({"a": "ten", "b": 10, "c": 10}), read({"a": True, "b": 19, "c": 10})
    )
    assert [a.kind for a in check(h).anomalies] == [BankAnomalyKind.MALFORMED] * 3


def test_custom_read_function_name() -> None:
    events = op_events(0, "balances", None, None, 0, 5, OK, {"a": 1, "b": 1, "c": 1})
    h = History(events)
    assert check(h).reads == 0
    assert not check(h, read_f="balances").valid
