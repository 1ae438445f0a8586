"""The watch-completeness checker: every element of the final read delivered exactly once,
nothing delivered that no add could have written, nothing the cluster then lost."""

from __future__ import annotations

from chaos.checkers.watch import check_watch


def test_every_final_element_seen_once_is_valid() -> None:
    r = check_watch([("put", 1, 5), ("put", 3, 6)], (1, 3), {1, 2, 3}, caught_up=True,
                    reconnects=2)
    assert r.valid is True
    assert r.counts()["reconnects"] == 2
    assert "OK" in r.render()


def test_a_missed_event_is_a_violation() -> None:
    r = check_watch([("put", 1, 5)], (1, 3), {1, 3}, caught_up=True)
    assert r.valid is False
    assert r.missing == (3,)
    assert "missing: [3]" in r.render()


def test_an_event_delivered_twice_is_a_violation() -> None:
    r = check_watch([("put", 1, 5), ("put", 1, 5)], (1,), {1}, caught_up=True)
    assert r.valid is False
    assert r.repeated == (1,)


def test_an_event_for_a_key_never_added_is_a_violation() -> None:
    r = check_watch([("put", 1, 5), ("put", 9, 6)], (1, 9), {1}, caught_up=True)
    assert r.valid is False
    assert r.unexpected == (9,)
    assert r.phantom == ()


def test_an_event_for_an_element_the_cluster_lost_is_a_phantom() -> None:
    r = check_watch([("put", 1, 5), ("put", 2, 6)], (1,), {1, 2}, caught_up=True)
    assert r.valid is False
    assert r.phantom == (2,)


def test_deletes_are_violations() -> None:
    r = check_watch([("put", 1, 5), ("delete", 1, 7)], (1,), {1}, caught_up=True)
    assert r.valid is False
    assert r.deletes == (1,)


def test_a_watch_that_never_caught_up_fails_and_one_that_ended_is_unknown() -> None:
    assert check_watch([], (), set(), caught_up=False).valid is False
    ended = check_watch([("put", 1, 5)], (1, 2), {1, 2}, caught_up=False,
                        error="CompactedError: compacted")
    assert ended.valid is None
    assert "the watch ended: CompactedError" in ended.render()
    # a violation is still one, however the watch ended
    assert check_watch([("put", 1, 5), ("put", 1, 5)], (1,), {1}, caught_up=False,
                       error="x").valid is False
