"""The lock (fencing token) checker."""

from __future__ import annotations

from chaos.checkers import check_lock
from chaos.checkers.lock import LockAnomalyKind
from chaos.history import EventType, History, Process
from tests.chaos_checkers.gen import history_of, op_events

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO


def acquire(p: Process, token: int | None, call: int, ret: int, status: EventType = OK):
    return op_events(p, "acquire", "lock", None, call, ret, status, token)


def write(p: Process, token: int, call: int, ret: int, status: EventType = OK):
    return op_events(p, "write", "file", (token, f"from {p}"), call, ret, status, None)


def release(p: Process, token: int, call: int, ret: int):
    return op_events(p, "release", "lock", token, call, ret)


def kinds(h: History) -> list[LockAnomalyKind]:
    return [a.kind for a in check_lock(h).anomalies]


def test_fenced_handover_is_valid() -> None:
    # p1 holds token 5, pauses past its lease; p2 gets 7; p1's late write is rejected
    h = history_of(
        acquire(1, 5, 0, 10),
        write(1, 5, 20, 30),
        acquire(2, 7, 40, 50),
        write(2, 7, 60, 70),
        write(1, 5, 80, 90, FAIL),  # fenced
        write(2, 7, 100, 110),
        release(2, 7, 120, 130),
        acquire(3, None, 140, 150, INFO),
        write(3, 9, 160, 170),  # token learned elsewhere
    )
    result = check_lock(h)
    assert result.valid, result.render()
    assert (result.acquires, result.writes) == (2, 4)
    assert "lock: OK" in result.render()


def test_unfenced_interleaving_is_a_stale_write() -> None:
    # same story, but the resource accepted the paused holder's late write
    h = history_of(
        acquire(1, 5, 0, 10),
        write(1, 5, 20, 30),
        acquire(2, 7, 40, 50),
        write(2, 7, 60, 70),
        write(1, 5, 80, 90),
    )
    result = check_lock(h)
    assert [a.kind for a in result.anomalies] == [LockAnomalyKind.STALE_WRITE]
    anomaly = result.anomalies[0]
    assert anomaly.op.process == 1
    assert anomaly.earlier is not None
    assert anomaly.earlier.process == 2
    assert "token 5 is older than 7" in result.render()


def test_concurrent_writes_may_be_ordered_either_way() -> None:
    h = history_of(
        acquire(1, 5, 0, 10), acquire(2, 7, 20, 30), write(2, 7, 40, 60), write(1, 5, 45, 70)
    )
    assert check_lock(h).valid


def test_tokens_must_strictly_increase() -> None:
    h = history_of(acquire(1, 5, 0, 10), release(1, 5, 20, 30), acquire(2, 5, 40, 50))
    assert kinds(h) == [LockAnomalyKind.DUPLICATE_TOKEN, LockAnomalyKind.TOKEN_NOT_INCREASING]
    h = history_of(acquire(1, 8, 0, 10), release(1, 8, 20, 30), acquire(2, 6, 40, 50))
    assert kinds(h) == [LockAnomalyKind.TOKEN_NOT_INCREASING]


def test_concurrent_acquires_need_only_distinct_tokens() -> None:
    h = history_of(acquire(1, 8, 0, 50), acquire(2, 6, 10, 40))
    assert check_lock(h).valid
    h = history_of(acquire(1, 8, 0, 50), acquire(2, 8, 10, 40))
    assert kinds(h) == [LockAnomalyKind.DUPLICATE_TOKEN]


def test_writes_with_someone_elses_or_an_invented_token() -> None:
    h = history_of(acquire(1, 5, 0, 10), write(2, 5, 20, 30), write(3, 6, 40, 50))
    result = check_lock(h)
    assert [a.kind for a in result.anomalies] == [LockAnomalyKind.FOREIGN_TOKEN] * 2
    assert "belongs to process 1" in result.anomalies[0].detail
    assert "never granted" in result.anomalies[1].detail


def test_malformed_tokens() -> None:
    h = history_of(acquire(1, None, 0, 10), op_events(1, "write", "file", "no token", 20, 30, OK))
    assert kinds(h) == [LockAnomalyKind.MALFORMED] * 2
