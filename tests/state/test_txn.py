"""Transactions: etcd 3.4 validation (``v3rpc/key.go``) and execution (``apply.go``)."""

from __future__ import annotations

import pytest

from raftkv.errors import InvalidRequestError
from raftkv.state import validate
from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    ErrorCode,
    LeaseGrant,
    Put,
    PutResult,
    Range,
    RangeResult,
    Txn,
    TxnResult,
)
from tests.state.helpers import Node

EQ, NE, GT, LT = (
    CompareResult.EQUAL,
    CompareResult.NOT_EQUAL,
    CompareResult.GREATER,
    (CompareResult.LESS),
)


def cmp(key: bytes, target: CompareTarget, result: CompareResult, operand: int | bytes,
        range_end: bytes = b"") -> Compare:  # fmt: skip
    return Compare(key, target, result, operand, range_end)


def succeeded(node: Node, *compares: Compare) -> bool:
    result = node.ok(Txn(compares))
    assert isinstance(result, TxnResult)
    return result.succeeded


# ------------------------------------------------------------------ validation


def test_too_many_ops_is_max_of_the_three_lists_not_the_sum() -> None:
    ops = tuple(Put(b"k%d" % i) for i in range(128))
    cmps = tuple(cmp(b"a", CompareTarget.VERSION, EQ, 0) for _ in range(128))
    validate(Txn(cmps, ops, ops[:1] * 1))  # 128 each is fine
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: too many operations in txn"):
        validate(Txn((), (*ops, Put(b"x"))))
    with pytest.raises(InvalidRequestError, match="too many operations"):
        validate(Txn((*cmps, cmps[0])))


def test_nested_txn_gets_the_remaining_budget() -> None:
    # etcd checkRequestOp(u, maxTxnOps - opc)
    inner = Txn((), (Put(b"x"), Put(b"y")))
    outer = tuple(Range(b"r") for _ in range(125))
    validate(Txn((), (*outer, inner)))  # 126 ops leave a budget of 2 for the inner txn
    with pytest.raises(InvalidRequestError, match="too many operations"):
        validate(Txn((), (*outer, Range(b"r"), inner)))


def test_validate_empty_keys_and_put_flags() -> None:
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: key is not provided$"):
        validate(Txn((cmp(b"", CompareTarget.VERSION, EQ, 0),)))
    with pytest.raises(InvalidRequestError, match="key is not provided"):
        validate(Txn((), (), (Txn((), (DeleteRange(b""),)),)))
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: value is provided$"):
        validate(Txn((), (Put(b"a", b"v", ignore_value=True),)))


@pytest.mark.parametrize(
    "ops",
    [
        (Put(b"a"), Put(b"a")),
        (DeleteRange(b"a"), Put(b"a")),
        (Put(b"b"), DeleteRange(b"a", b"c")),
        (Put(b"a"), Txn((), (Put(b"a"),))),
        (Txn((), (Put(b"a"),)), Txn((), (Put(b"a"),))),
        (Txn((), (), (DeleteRange(b"a"),)), Put(b"a")),
        (Txn((), (DeleteRange(b"a"),)), Txn((), (Put(b"a"),))),
    ],
)
def test_duplicate_key_in_txn(ops: tuple[Put | DeleteRange | Txn, ...]) -> None:
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: duplicate key given in txn"):
        validate(Txn((), ops))
    node = Node()
    assert node.error(Txn((), (), ops)).message.endswith("duplicate key given in txn request")


@pytest.mark.parametrize(
    "ops",
    [
        (DeleteRange(b"a"), DeleteRange(b"a", b"z")),  # overlapping deletes are fine
        (Txn((), (Put(b"a"),), (Put(b"a"),)),),  # then/else of one txn are exclusive
        (Put(b"a"), DeleteRange(b"b", b"c")),
        (DeleteRange(b"a", b"\0"), Put(b"b")),  # etcd quirk: "from key" delete not checked
        (Txn((), (Put(b"a"),)), Txn((), (DeleteRange(b"a"),))),  # etcd: order-dependent check
    ],
)
def test_allowed_overlaps(ops: tuple[Put | DeleteRange | Txn, ...]) -> None:
    validate(Txn((), ops))


def test_from_key_delete_then_put_in_one_txn_recreates_the_key() -> None:
    node = Node()
    node.ok(Put(b"b", b"old"))  # 2
    result = node.ok(Txn((), (DeleteRange(b"a", b"\0"), Put(b"b", b"new"))))
    assert isinstance(result, TxnResult)
    assert result.revision == 3
    (kv,) = node.sm.range(Range(b"b")).kvs
    assert (kv.value, kv.create_revision, kv.version) == (b"new", 3, 1)


# ------------------------------------------------------------------ compares


def test_compare_targets_and_results() -> None:
    node = Node()
    node.ok(LeaseGrant(9, 60, 0))
    node.ok(Put(b"a", b"m", lease=9))  # rev 2, version 1
    node.ok(Put(b"a", b"m", lease=9))  # rev 3, version 2
    assert succeeded(node, cmp(b"a", CompareTarget.VERSION, EQ, 2))
    assert succeeded(node, cmp(b"a", CompareTarget.CREATE, EQ, 2))
    assert succeeded(node, cmp(b"a", CompareTarget.MOD, GT, 2))
    assert succeeded(node, cmp(b"a", CompareTarget.MOD, LT, 4))
    assert succeeded(node, cmp(b"a", CompareTarget.LEASE, EQ, 9))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, EQ, b"m"))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, GT, b"l"))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, LT, b"mm"))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, NE, b"x"))
    assert not succeeded(node, cmp(b"a", CompareTarget.VERSION, NE, 2))
    # all compares are ANDed
    assert not succeeded(
        node, cmp(b"a", CompareTarget.VERSION, EQ, 2), cmp(b"a", CompareTarget.VALUE, EQ, b"x")
    )


def test_missing_key_compares_as_zero_except_value() -> None:
    # etcd applyCompare: a missing key is a zero KeyValue; VALUE on a missing key is false.
    node = Node()
    assert succeeded(node, cmp(b"nope", CompareTarget.CREATE, EQ, 0))
    assert succeeded(node, cmp(b"nope", CompareTarget.VERSION, EQ, 0))
    assert not succeeded(node, cmp(b"nope", CompareTarget.VALUE, EQ, b""))
    assert not succeeded(node, cmp(b"nope", CompareTarget.VALUE, NE, b"x"))


def test_range_compare_needs_every_key() -> None:
    node = Node()
    node.ok(Put(b"a1", b"x"))
    node.ok(Put(b"a2", b"x"))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, EQ, b"x", b"b"))
    node.ok(Put(b"a3", b"y"))
    assert not succeeded(node, cmp(b"a", CompareTarget.VALUE, EQ, b"x", b"b"))
    assert succeeded(node, cmp(b"a", CompareTarget.VERSION, GT, 0, b"\0"))
    assert succeeded(node, cmp(b"q", CompareTarget.VERSION, EQ, 0, b"r"))  # empty range


def test_operand_of_the_wrong_type_compares_as_zero() -> None:
    # etcd reads the target_union field of the target; another field reads as 0 / "".
    node = Node()
    node.ok(Put(b"a", b""))
    assert succeeded(node, cmp(b"a", CompareTarget.VALUE, EQ, 5))
    assert succeeded(node, cmp(b"a", CompareTarget.LEASE, EQ, b"x"))


# ------------------------------------------------------------------ execution


def test_txn_runs_one_branch_at_one_revision_with_read_your_writes() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))  # 2
    txn = Txn(
        (cmp(b"a", CompareTarget.VALUE, EQ, b"1"),),
        (Range(b"a"), Put(b"a", b"2"), Put(b"b", b"x"), Range(b"a", b"\0"), DeleteRange(b"c")),
        (Put(b"f", b"f"),),
    )
    result = node.ok(txn)
    assert isinstance(result, TxnResult)
    assert result.succeeded
    assert result.revision == 3
    r0, p1, p2, r3, d4 = result.responses
    assert isinstance(r0, RangeResult)
    assert r0.revision == 2
    assert r0.kvs[0].value == b"1"
    assert p1 == PutResult(3)
    assert p2 == PutResult(3)
    assert isinstance(r3, RangeResult)
    assert r3.revision == 3
    assert [(kv.key, kv.value, kv.mod_revision) for kv in r3.kvs] == [
        (b"a", b"2", 3),
        (b"b", b"x", 3),
    ]
    assert d4 == DeleteResult(revision=3, deleted=0)
    assert node.sm.revision == 3
    assert node.sm.range(Range(b"f")).count == 0


def test_failure_branch_and_read_only_txn_do_not_bump() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))
    result = node.ok(Txn((cmp(b"a", CompareTarget.VERSION, EQ, 5),), (Put(b"x"),), (Range(b"a"),)))
    assert isinstance(result, TxnResult)
    assert not result.succeeded
    assert result.revision == 2
    result = node.ok(Txn((), (DeleteRange(b"zzz"),)))
    assert isinstance(result, TxnResult)
    assert result.revision == 2
    assert node.sm.revision == 2


def test_nested_compares_see_the_state_before_the_txn() -> None:
    # etcd compareToPath evaluates every compare on the path before executing any op.
    node = Node()
    inner = Txn((cmp(b"a", CompareTarget.VERSION, EQ, 0),), (Put(b"then"),), (Put(b"else"),))
    result = node.ok(Txn((), (Put(b"a", b"1"), inner)))
    assert isinstance(result, TxnResult)
    nested = result.responses[1]
    assert isinstance(nested, TxnResult)
    assert nested.succeeded
    assert node.sm.range(Range(b"then")).count == 1


def test_unknown_lease_fails_the_whole_txn_before_writing() -> None:
    node = Node()
    err = node.error(Txn((), (Put(b"a"), Txn((), (Put(b"b", lease=42),)))))
    assert (err.code, err.message) == (
        ErrorCode.LEASE_NOT_FOUND,
        "etcdserver: requested lease not found",
    )
    assert node.sm.revision == 1
    assert node.sm.range(Range(b"a")).count == 0


def test_range_revision_errors_fail_the_txn_before_writing() -> None:
    node = Node()
    node.ok(Put(b"a"))
    assert node.error(Txn((), (Put(b"b"), Range(b"a", revision=3)))).code == (
        ErrorCode.FUTURE_REVISION
    )
    # etcd checkRange: a revision below the compact revision (-1 when never compacted)
    # is "compacted", even a negative one that a plain Range would read as "latest"
    assert node.error(Txn((), (Range(b"a", revision=-2),))).code == ErrorCode.COMPACTED
    assert node.sm.revision == 2


def test_ignore_value_on_key_deleted_earlier_in_same_txn_changes_nothing() -> None:
    # Not reachable in etcd without its "from key" quirk (etcd would panic); here the
    # whole request fails with "key not found" and no change survives.
    node = Node()
    node.ok(Put(b"b", b"1"))
    err = node.error(Txn((), (DeleteRange(b"a", b"\0"), Put(b"b", ignore_value=True))))
    assert err.message == "etcdserver: key not found"
    assert node.sm.range(Range(b"b")).kvs[0].value == b"1"
    assert node.sm.revision == 2


def test_read_txn_without_log() -> None:
    node = Node()
    node.ok(Put(b"a", b"1"))
    result = node.sm.read_txn(Txn((cmp(b"a", CompareTarget.VERSION, EQ, 1),), (Range(b"a"),)))
    assert result.succeeded
    assert result.revision == 2
    with pytest.raises(InvalidRequestError):
        node.sm.read_txn(Txn((), (), (Put(b"x"),)))
