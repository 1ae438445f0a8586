"""The set checker: lost acknowledged adds, elements from nowhere, divergent final reads."""

from __future__ import annotations

from chaos.checkers.set import check_set
from chaos.history import EventType, History
from tests.chaos_checkers.gen import history_of, op_events

OK, FAIL, INFO = EventType.OK, EventType.FAIL, EventType.INFO


def _history(adds: list[tuple[int, EventType]], *reads: tuple[int, ...]) -> History:
    ops = [op_events(i, "add", None, e, 10 * i, 10 * i + 5, status, e if status is OK else None)
           for i, (e, status) in enumerate(adds)]
    t = 10 * len(adds) + 100
    ops += [op_events(1000 + j, "read", None, None, t + j, t + j + 1, OK, r)
            for j, r in enumerate(reads)]
    return history_of(*ops)


def test_every_acknowledged_add_present_is_valid() -> None:
    r = check_set(_history([(1, OK), (2, OK), (3, INFO), (4, INFO), (5, FAIL)], (1, 2, 3)))
    assert r.valid is True
    assert (r.ok, r.indeterminate, r.failed, r.recovered) == (2, 2, 1, 1)


def test_a_lost_acknowledged_add_is_reported() -> None:
    r = check_set(_history([(1, OK), (2, OK)], (1,)))
    assert r.valid is False
    assert r.lost == (2,)
    assert "1 lost" in r.render()


def test_an_element_never_added_or_whose_add_failed_is_unexpected() -> None:
    r = check_set(_history([(1, OK), (5, FAIL)], (1, 5, 9)))
    assert r.valid is False
    assert r.unexpected == (5, 9)


def test_final_reads_that_disagree_are_divergent() -> None:
    r = check_set(_history([(1, OK), (2, INFO)], (1, 2), (1,)))
    assert r.valid is False
    assert len(r.divergent) == 1


def test_no_final_read_is_unknown_not_valid() -> None:
    r = check_set(_history([(1, OK)]))
    assert r.valid is None
    assert "UNKNOWN" in r.render()


def test_a_key_written_twice_is_reported() -> None:
    h = _history([(1, OK), (2, INFO)], (1, 2))
    assert check_set(h, versions={1: 1, 2: 1}).valid is True
    r = check_set(h, versions={1: 1, 2: 2})
    assert r.valid is False
    assert r.duplicated == ((2, 2),)
    assert "written twice (element, version): [(2, 2)]" in r.render()
