"""MVCC revision semantics, range options and compaction, as etcd 3.4 defines them.

References: etcd ``mvcc/kvstore.go`` (currentRev starts at 1, compactMainRev at -1),
``mvcc/kvstore_txn.go`` (rangeKeys, put, deleteRange), ``etcdserver/apply.go`` (Range
options: limit/more/count, sort, min/max filters).
"""

from __future__ import annotations

import pytest

from raftkv.errors import CompactedError, InvalidRequestError
from raftkv.state.commands import (
    Compact,
    CompactResult,
    DeleteRange,
    DeleteResult,
    ErrorCode,
    KeyValue,
    Put,
    PutResult,
    Range,
    SortOrder,
    SortTarget,
)
from raftkv.state.errors import FutureRevisionError
from raftkv.state.mvcc import interval
from tests.state.helpers import Node


def keys(node: Node, req: Range) -> list[bytes]:
    return [kv.key for kv in node.sm.range(req).kvs]


def test_fresh_store_is_at_revision_1_and_first_write_gets_2() -> None:
    # etcd: currentRev starts at 1; the first txn that writes gets currentRev + 1.
    node = Node()
    assert node.sm.revision == 1
    assert node.sm.range(Range(b"a")).revision == 1
    assert node.ok(Put(b"a", b"1")) == PutResult(revision=2)
    assert node.sm.revision == 2


def test_put_always_bumps_revision_even_with_same_value() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))
    node.ok(Put(b"a", b"1"))
    assert node.sm.revision == 3


def test_create_mod_version_rules() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))  # rev 2
    node.ok(Put(b"b", b"x"))  # rev 3
    node.ok(Put(b"a", b"2"))  # rev 4
    (kv,) = node.sm.range(Range(b"a")).kvs
    assert kv == KeyValue(b"a", create_revision=2, mod_revision=4, version=2, value=b"2")


def test_delete_then_put_recreates_with_new_create_revision_and_version_1() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))  # 2
    node.ok(Put(b"a", b"2"))  # 3
    assert node.ok(DeleteRange(b"a")) == DeleteResult(revision=4, deleted=1)
    node.ok(Put(b"a", b"3"))  # 5
    (kv,) = node.sm.range(Range(b"a")).kvs
    assert (kv.create_revision, kv.mod_revision, kv.version) == (5, 5, 1)


def test_delete_of_nothing_does_not_bump_revision() -> None:
    # etcd storeTxnWrite.DeleteRange: returns beginRev when nothing changed.
    node = Node()
    node.ok(Put(b"a", b"1"))
    assert node.ok(DeleteRange(b"zz")) == DeleteResult(revision=2, deleted=0)
    assert node.ok(DeleteRange(b"a", b"\0")) == DeleteResult(revision=3, deleted=1)
    assert node.ok(DeleteRange(b"a", b"\0")) == DeleteResult(revision=3, deleted=0)
    assert node.sm.revision == 3


def test_delete_range_shares_one_revision_and_returns_prev_kvs_in_key_order() -> None:
    node = Node()
    for k in (b"c", b"a", b"b"):
        node.ok(Put(k, k))
    result = node.ok(DeleteRange(b"a", b"c", prev_kv=True))
    assert isinstance(result, DeleteResult)
    assert result.revision == 5
    assert result.deleted == 2
    assert [kv.key for kv in result.prev_kvs] == [b"a", b"b"]
    assert keys(node, Range(b"\0", b"\0")) == [b"c"]


def test_put_prev_kv_only_when_asked_and_key_existed() -> None:
    node = Node()
    assert node.ok(Put(b"a", b"1", prev_kv=True)) == PutResult(3 - 1, None)
    result = node.ok(Put(b"a", b"2", prev_kv=True))
    assert isinstance(result, PutResult)
    assert result.prev_kv is not None
    assert result.prev_kv.value == b"1"
    assert node.ok(Put(b"a", b"3")) == PutResult(4, None)


def test_ignore_value_and_ignore_lease() -> None:
    # etcd apply.go Put: ignore_* keep the stored value / lease; need an existing key.
    node = Node()
    err = node.error(Put(b"a", ignore_value=True))
    assert (err.code, err.message) == (ErrorCode.INVALID_REQUEST, "etcdserver: key not found")
    node.ok(Put(b"a", b"keep"))
    node.ok(Put(b"a", ignore_value=True))
    (kv,) = node.sm.range(Range(b"a")).kvs
    assert (kv.value, kv.version) == (b"keep", 2)
    assert node.error(Put(b"a", b"v", ignore_value=True)).message == (
        "etcdserver: value is provided"
    )
    assert node.error(Put(b"a", lease=5, ignore_lease=True)).message == (
        "etcdserver: lease is provided"
    )


def test_empty_key_rejected() -> None:
    node = Node()
    assert node.error(Put(b"", b"v")).message == "etcdserver: key is not provided"
    assert node.error(DeleteRange(b"")).message == "etcdserver: key is not provided"
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: key is not provided$"):
        node.sm.range(Range(b""))


@pytest.mark.parametrize(
    ("key", "range_end", "expected"),
    [
        (b"b", b"", [b"b"]),
        (b"bb", b"", []),
        (b"b", b"\0", [b"b", b"c", b"d"]),
        (b"\0", b"\0", [b"a", b"b", b"c", b"d"]),
        (b"a", b"c", [b"a", b"b"]),
        (b"c", b"a", []),
        (b"b", b"b", []),
    ],
)
def test_range_end_conventions(key: bytes, range_end: bytes, expected: list[bytes]) -> None:
    node = Node()
    for k in (b"d", b"a", b"c", b"b"):
        node.ok(Put(k, k))
    assert keys(node, Range(key, range_end)) == expected


def test_interval_translation() -> None:
    assert interval(b"a", b"") == (b"a", b"a\0")
    assert interval(b"a", b"\0") == (b"a", None)
    assert interval(b"a", b"b") == (b"a", b"b")


def test_range_at_past_revision_sees_old_state_but_header_is_current() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))  # 2
    node.ok(Put(b"a", b"2"))  # 3
    node.ok(DeleteRange(b"a"))  # 4
    node.ok(Put(b"b", b"x"))  # 5
    old = node.sm.range(Range(b"\0", b"\0", revision=2))
    assert old.revision == 5
    assert [kv.value for kv in old.kvs] == [b"1"]
    assert keys(node, Range(b"\0", b"\0", revision=4)) == []
    assert keys(node, Range(b"\0", b"\0", revision=1)) == []


def test_range_future_revision_error() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))
    with pytest.raises(FutureRevisionError, match=r"^mvcc: required revision is a future"):
        node.sm.range(Range(b"a", revision=3))


def test_limit_more_and_count_before_limit() -> None:
    # etcd: count is the number of keys in range before limit; more if more matched.
    node = Node()
    for k in (b"a", b"b", b"c"):
        node.ok(Put(k, k))
    r = node.sm.range(Range(b"a", b"\0", limit=2))
    assert [kv.key for kv in r.kvs] == [b"a", b"b"]
    assert r.more
    assert r.count == 3
    r = node.sm.range(Range(b"a", b"\0", limit=3))
    assert len(r.kvs) == 3
    assert not r.more
    assert r.count == 3
    r = node.sm.range(Range(b"a", b"\0", limit=-1))
    assert len(r.kvs) == 3
    assert not r.more


def test_count_only_and_keys_only() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))
    node.ok(Put(b"b", b"2"))
    r = node.sm.range(Range(b"a", b"\0", count_only=True))
    assert r.kvs == ()
    assert r.count == 2
    assert not r.more
    r = node.sm.range(Range(b"a", b"\0", keys_only=True))
    assert [(kv.key, kv.value, kv.version) for kv in r.kvs] == [(b"a", b"", 1), (b"b", b"", 1)]


def test_sort_target_without_order_sorts_ascending() -> None:
    # etcd apply.go Range: sort_target != KEY with order NONE means ASCEND.
    node = Node()
    node.ok(Put(b"a", b"3"))
    node.ok(Put(b"b", b"1"))
    node.ok(Put(b"c", b"2"))
    assert keys(node, Range(b"a", b"\0", sort_target=SortTarget.VALUE)) == [b"b", b"c", b"a"]
    desc = Range(b"a", b"\0", sort_order=SortOrder.DESCEND, sort_target=SortTarget.KEY)
    assert keys(node, desc) == [b"c", b"b", b"a"]
    by_mod = Range(b"a", b"\0", sort_order=SortOrder.DESCEND, sort_target=SortTarget.MOD)
    assert keys(node, by_mod) == [b"c", b"b", b"a"]


def test_sort_then_limit() -> None:
    # etcd fetches the whole range when sorting, then sorts, then truncates.
    node = Node()
    for k in (b"a", b"b", b"c"):
        node.ok(Put(k, k))
    req = Range(b"a", b"\0", limit=1, sort_order=SortOrder.DESCEND, sort_target=SortTarget.CREATE)
    r = node.sm.range(req)
    assert [kv.key for kv in r.kvs] == [b"c"]
    assert r.more
    assert r.count == 3


def test_min_max_filters_apply_after_count() -> None:
    # etcd 3.4: count is computed before the min/max filters.
    node = Node()
    for k in (b"a", b"b", b"c"):
        node.ok(Put(k, k))  # create revisions 2, 3, 4
    node.ok(Put(b"a", b"again"))  # a: mod 5
    r = node.sm.range(Range(b"a", b"\0", min_mod_revision=4))
    assert [kv.key for kv in r.kvs] == [b"a", b"c"]
    assert r.count == 3
    assert keys(node, Range(b"a", b"\0", max_create_revision=3)) == [b"a", b"b"]
    assert keys(node, Range(b"a", b"\0", min_create_revision=3, max_mod_revision=4)) == [
        b"b",
        b"c",
    ]


def test_compaction_rules() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))  # 2
    node.ok(Put(b"a", b"2"))  # 3
    node.ok(Put(b"b", b"1"))  # 4
    node.ok(DeleteRange(b"b"))  # 5
    node.ok(Put(b"c", b"1"))  # 6
    assert node.ok(Compact(5)) == CompactResult(revision=6)
    assert node.sm.revision == 6  # compaction does not bump the revision
    assert node.sm.compact_revision == 5
    # reading exactly at the compact revision is allowed and unchanged
    assert [kv.value for kv in node.sm.range(Range(b"\0", b"\0", revision=5)).kvs] == [b"2"]
    with pytest.raises(CompactedError) as info:
        node.sm.range(Range(b"a", revision=4))
    assert info.value.compact_revision == 5
    # compacting at or below the previous compaction fails; above current is future
    err = node.error(Compact(5))
    assert (err.code, err.compact_revision) == (ErrorCode.COMPACTED, 5)
    assert node.error(Compact(7)).code == ErrorCode.FUTURE_REVISION
    assert node.ok(Compact(6)) == CompactResult(revision=6)


def kv_records(node: Node) -> int:
    return sum(1 for _ in node.backend.scan(b"k", b"l"))


def test_compaction_drops_old_records_from_the_backend() -> None:
    node = Node()
    for i in range(10):
        node.ok(Put(b"a", str(i).encode()))  # revisions 2..11
    node.ok(Put(b"gone", b"x"))  # 12
    node.ok(DeleteRange(b"gone"))  # 13
    node.ok(Put(b"z", b"z"))  # 14
    assert kv_records(node) == 13
    node.ok(Compact(13))
    # a keeps its newest version; gone's newest record below 13 is live so it stays, as
    # does its tombstone at 13 (records at or above the compact revision are kept)
    assert kv_records(node) == 4
    node.ok(Compact(14))
    assert kv_records(node) == 2  # gone's newest record below 14 is a tombstone: all dropped
    assert keys(node, Range(b"\0", b"\0", revision=14)) == [b"a", b"z"]


def test_fresh_store_compaction_edges() -> None:
    # etcd compactMainRev starts at -1: Compact(0) and Compact(1) are accepted once.
    node = Node()
    node.ok(Compact(1))
    assert node.error(Compact(1)).code == ErrorCode.COMPACTED
    assert node.sm.range(Range(b"a", revision=1)).count == 0
