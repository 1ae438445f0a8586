"""Watch history (``StateMachine.events_between``): the events read back from the revisioned
records equal the events produced live when the entries were applied (etcd's unsynced
watchers replay the backend the same way), and history below the compact revision is gone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.errors import CompactedError
from raftkv.state.codec import encode_request
from raftkv.state.commands import (
    Command,
    Compact,
    DeleteRange,
    Event,
    EventType,
    KeyValue,
    Put,
    Request,
    Txn,
)
from raftkv.state.machine import Applied
from tests.state.helpers import Node

ALL = (b"\0", b"\0")


def apply_all(node: Node, ops: list[Command], *, fill: bool = True) -> list[Event]:
    """Apply ``ops``; return every live event, in order, with ``prev_kv`` filled in right
    after each entry as the watch hub does (``fill=False``: as applied)."""
    live: list[Event] = []
    for op in ops:
        node.index += 1
        applied: Applied = node.sm.apply(node.index, encode_request(Request(0, 0, op)))
        live.extend(node.sm.with_prev_kv(applied.events) if fill else applied.events)
    return live


def test_history_equals_live_events_including_prev_kv_and_tombstones() -> None:
    node = Node()
    live = apply_all(node, [
        Put(b"a", b"1"), Put(b"b", b"1"), Put(b"a", b"2"), DeleteRange(b"a"),
        Put(b"a", b"3"), Txn(success=(Put(b"c", b"1"), DeleteRange(b"b"))),
    ])
    assert node.sm.revision == 7
    hist = node.sm.events_between(2, 8, *ALL)
    assert hist == live
    # spot-check the shapes etcd sends
    assert hist[3] == Event(EventType.DELETE, KeyValue(b"a", mod_revision=5),
                            KeyValue(b"a", 2, 4, 2, b"2"))
    assert hist[4].prev_kv is None  # a re-create has no prev_kv
    assert [e.kv.mod_revision for e in hist] == [2, 3, 4, 5, 6, 7, 7]


def test_history_is_half_open_and_filtered_by_range() -> None:
    node = Node()
    apply_all(node, [Put(b"a", b"1"), Put(b"ab", b"1"), Put(b"b", b"1"), Put(b"ab", b"2")])
    revs = [e.kv.mod_revision for e in node.sm.events_between(3, 5, *ALL)]
    assert revs == [3, 4]
    assert [e.kv.key for e in node.sm.events_between(0, 100, b"a", b"b")] == [b"a", b"ab", b"ab"]
    assert [e.kv.key for e in node.sm.events_between(0, 100, b"ab", b"")] == [b"ab", b"ab"]
    assert [e.kv.key for e in node.sm.events_between(0, 100, b"ab", b"\0")] == [
        b"ab", b"b", b"ab"]
    assert node.sm.events_between(5, 5, *ALL) == []


def test_history_below_compact_revision_raises_with_the_compact_revision() -> None:
    node = Node()
    live = apply_all(node, [Put(b"a", b"1"), Put(b"a", b"2"), Put(b"a", b"3"), Put(b"b", b"1")])
    node.ok(Compact(4))
    with pytest.raises(CompactedError) as info:
        node.sm.events_between(3, 10, *ALL)
    assert info.value.compact_revision == 4
    # at and above the compact revision, history (prev_kv included) is unchanged
    assert node.sm.events_between(4, 10, *ALL) == live[2:]


def test_an_applied_put_carries_no_prev_kv_and_with_prev_kv_reads_it_back() -> None:
    node = Node()
    applied = apply_all(node, [
        Put(b"a", b"1"), Put(b"a", b"2"), Txn(success=(Put(b"a", b"3"), Put(b"b", b"1"))),
        DeleteRange(b"a"), Put(b"a", b"5"), Put(b"b", b"2"),
    ], fill=False)
    assert [e.prev_kv for e in applied if e.type is EventType.PUT] == [None] * 6
    later = []  # read back one entry at a time, after every later write: by revision
    for rev in range(3, node.sm.revision + 1):
        later += node.sm.with_prev_kv([e for e in applied if e.kv.mod_revision == rev])
    assert [None if e.prev_kv is None else e.prev_kv.value for e in later] == [
        b"1", b"2", None, b"3", None, b"1"]
    assert later[3].type is EventType.DELETE
    assert later[4].kv.version == 1


def test_with_prev_kv_leaves_out_a_value_compacted_away() -> None:
    node = Node()
    applied = apply_all(node, [Put(b"a", b"1"), Put(b"a", b"2"), Put(b"a", b"3")], fill=False)
    node.ok(Compact(4))  # drops the record at 2, keeps 3 (the newest below 4)
    assert node.sm.with_prev_kv(applied[1:2])[0].prev_kv is None
    assert node.sm.with_prev_kv(applied[2:])[0].prev_kv == KeyValue(b"a", 2, 3, 2, b"2")


keys = st.sampled_from([b"a", b"b", b"c", b"d"])
ops = st.one_of(
    st.builds(Put, keys, st.binary(max_size=2)),
    st.builds(DeleteRange, keys, st.sampled_from([b"", b"c", b"\0"])),
    st.builds(lambda k, v, d: Txn(success=(Put(k, v), DeleteRange(d))), keys,
              st.binary(max_size=2), keys),
    st.builds(lambda k, v, w: Txn(success=(Put(k, v), Put(k + b"x", w))), keys,
              st.binary(max_size=2), st.binary(max_size=2)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ops, max_size=30), st.integers(0, 40))
def test_history_matches_live_events_for_random_histories(cmds: list[Command],
                                                          start: int) -> None:
    node = Node()
    live = apply_all(node, cmds)
    hist = node.sm.events_between(start, node.sm.revision + 1, *ALL)
    assert hist == [e for e in live if e.kv.mod_revision >= start]
    late: list[Event] = []  # filled only now, after every later write: the same
    for rev in sorted({e.kv.mod_revision for e in live}):
        late.extend(node.sm.with_prev_kv(
            [Event(e.type, e.kv, None if e.type is EventType.PUT else e.prev_kv)
             for e in live if e.kv.mod_revision == rev]))
    assert late == live
