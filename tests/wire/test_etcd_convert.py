"""Pure conversions between etcd's ``etcdserverpb`` messages and the state machine's
commands and results (raftkv/wire/etcd_convert.py)."""

from __future__ import annotations

import pytest

from raftkv.errors import InvalidRequestError
from raftkv.state import codec
from raftkv.state.commands import (
    Compact,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    KeyValue,
    Put,
    PutResult,
    Range,
    RangeResult,
    Request,
    SortOrder,
    SortTarget,
    Txn,
    TxnResult,
)
from raftkv.wire import etcd_convert as ec
from raftkv.wire.pb.etcdserverpb import rpc_pb2

Cmp = rpc_pb2.Compare
Req = rpc_pb2.RequestOp


@pytest.mark.parametrize(("target", "field", "value", "expected"), [
    (Cmp.VERSION, "version", 3, CompareTarget.VERSION),
    (Cmp.CREATE, "create_revision", 4, CompareTarget.CREATE),
    (Cmp.MOD, "mod_revision", 5, CompareTarget.MOD),
    (Cmp.VALUE, "value", b"x", CompareTarget.VALUE),
    (Cmp.LEASE, "lease", 6, CompareTarget.LEASE),
])
def test_compare_every_target(target: int, field: str, value: int | bytes,
                              expected: CompareTarget) -> None:
    for result, want in [(Cmp.EQUAL, CompareResult.EQUAL), (Cmp.GREATER, CompareResult.GREATER),
                         (Cmp.LESS, CompareResult.LESS),
                         (Cmp.NOT_EQUAL, CompareResult.NOT_EQUAL)]:
        pb = Cmp(key=b"k", range_end=b"z", target=target, result=result)  # type: ignore[arg-type]
        setattr(pb, field, value)
        assert ec.compare_from_pb(pb) == Compare(b"k", expected, want, value, b"z")


def test_compare_with_a_zero_operand_keeps_it() -> None:
    assert ec.compare_from_pb(Cmp(key=b"k", target=Cmp.VALUE, value=b"")).operand == b""
    assert ec.compare_from_pb(Cmp(key=b"k", target=Cmp.CREATE, create_revision=0)).operand == 0


def test_compare_reads_only_the_matching_union_member() -> None:
    # etcd compareKV: a VERSION target with mod_revision set compares against 0
    got = ec.compare_from_pb(Cmp(key=b"k", target=Cmp.VERSION, mod_revision=9))
    assert got.operand == b""  # wrong type: the state machine compares it as 0
    got = ec.compare_from_pb(Cmp(key=b"k", target=Cmp.VALUE, version=9))
    assert got.operand == 0  # wrong type: compared as b""
    got = ec.compare_from_pb(Cmp(key=b"k", target=Cmp.LEASE))
    assert got.operand == b""
    # the wrong-typed operands survive the log encoding
    txn = Txn(compare=(got,))
    assert codec.decode_request(codec.encode_request(Request(0, 1, txn))).op == txn


def test_unknown_enums_are_invalid() -> None:
    with pytest.raises(InvalidRequestError, match="etcdserver: invalid sort option"):
        ec.range_from_pb(rpc_pb2.RangeRequest(key=b"k", sort_target=9))  # type: ignore[arg-type]
    # etcd 3.4 returns an unknown sort order unsorted, in key order
    got = ec.range_from_pb(rpc_pb2.RangeRequest(key=b"k", sort_order=3,  # type: ignore[arg-type]
                                                sort_target=rpc_pb2.RangeRequest.VALUE))
    assert (got.sort_order, got.sort_target) == (SortOrder.NONE, SortTarget.KEY)
    with pytest.raises(InvalidRequestError):
        ec.compare_from_pb(Cmp(key=b"k", target=9))  # type: ignore[arg-type]


def test_range_every_option() -> None:
    pb = rpc_pb2.RangeRequest(key=b"a", range_end=b"\0", limit=2, revision=7,
                              sort_order=rpc_pb2.RangeRequest.DESCEND,
                              sort_target=rpc_pb2.RangeRequest.MOD, serializable=True,
                              keys_only=True, count_only=True, min_mod_revision=1,
                              max_mod_revision=2, min_create_revision=3, max_create_revision=4)
    assert ec.range_from_pb(pb) == Range(b"a", b"\0", 2, 7, SortOrder.DESCEND, SortTarget.MOD,
                                         True, True, True, 1, 2, 3, 4)


def test_request_ops_and_nested_txn() -> None:
    pb = rpc_pb2.TxnRequest(
        compare=[Cmp(key=b"k", target=Cmp.VALUE, result=Cmp.NOT_EQUAL, value=b"v")],
        success=[Req(request_put=rpc_pb2.PutRequest(key=b"k", value=b"v", lease=5,
                                                    prev_kv=True)),
                 Req(request_txn=rpc_pb2.TxnRequest(
                     failure=[Req(request_range=rpc_pb2.RangeRequest(key=b"k"))]))],
        failure=[Req(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"a", range_end=b"b",
                                                                     prev_kv=True)),
                 Req(request_put=rpc_pb2.PutRequest(key=b"k", ignore_value=True,
                                                    ignore_lease=True))])
    assert ec.txn_from_pb(pb) == Txn(
        compare=(Compare(b"k", CompareTarget.VALUE, CompareResult.NOT_EQUAL, b"v"),),
        success=(Put(b"k", b"v", 5, prev_kv=True), Txn(failure=(Range(b"k"),))),
        failure=(DeleteRange(b"a", b"b", True),
                 Put(b"k", ignore_value=True, ignore_lease=True)))


def test_empty_request_op_is_key_not_found() -> None:
    with pytest.raises(InvalidRequestError, match=r"^etcdserver: key not found$"):
        ec.txn_from_pb(rpc_pb2.TxnRequest(failure=[Req()]))


def test_op_budget() -> None:
    get = Req(request_range=rpc_pb2.RangeRequest(key=b"k"))
    ec.check_txn_ops(rpc_pb2.TxnRequest(success=[get] * 128, failure=[get] * 128), 128)
    nested = Req(request_txn=rpc_pb2.TxnRequest(failure=[get] * 2))
    for pb, max_ops in [
        (rpc_pb2.TxnRequest(failure=[get] * 129), 128),
        (rpc_pb2.TxnRequest(compare=[Cmp(key=b"k")] * 3, success=[get], failure=[get]), 2),
        (rpc_pb2.TxnRequest(success=[nested]), 2),  # the nested txn has 2 - 1 left
    ]:
        with pytest.raises(InvalidRequestError,
                           match=r"^etcdserver: too many operations in txn request$"):
            ec.check_txn_ops(pb, max_ops)
    ec.check_txn_ops(rpc_pb2.TxnRequest(success=[Req(request_txn=rpc_pb2.TxnRequest(
        failure=[get]))]), 2)


def test_compact() -> None:
    assert ec.compact_from_pb(rpc_pb2.CompactionRequest(revision=9, physical=True)) == \
        Compact(9, True)


def test_txn_result_headers() -> None:
    kv = KeyValue(b"k", 2, 3, 2, b"v", 0)
    result = TxnResult(8, True, (
        RangeResult(8, (kv,), more=True, count=4),
        PutResult(8, kv),
        DeleteResult(8, 1, (kv,)),
        TxnResult(8, False, (RangeResult(8),)),
    ))
    header = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=8, raft_term=3)
    pb = ec.txn_result_to_pb(result, header)
    assert pb.header == header
    assert pb.succeeded
    rng, put, dele, nested = pb.responses
    assert rng.response_range.header == rpc_pb2.ResponseHeader(revision=8)
    assert (rng.response_range.more, rng.response_range.count) == (True, 4)
    assert rng.response_range.kvs[0].value == b"v"
    assert put.response_put.header == rpc_pb2.ResponseHeader(revision=8)
    assert put.response_put.prev_kv.mod_revision == 3
    assert (dele.response_delete_range.deleted, len(dele.response_delete_range.prev_kvs)) == \
        (1, 1)
    # a nested txn response has a present but empty header, as etcd's newTxnResp
    assert nested.response_txn.HasField("header")
    assert nested.response_txn.header == rpc_pb2.ResponseHeader()
    assert not nested.response_txn.succeeded
    assert nested.response_txn.responses[0].WhichOneof("response") == "response_range"
