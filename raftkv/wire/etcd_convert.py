"""Conversions between the etcd v3 protobuf messages and the state machine's commands and
results. The only place where ``etcdserverpb`` / ``mvccpb`` meet ``raftkv.state``."""

from __future__ import annotations

from raftkv.errors import InvalidRequestError
from raftkv.state.commands import (
    Compact,
    CompactResult,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    KeyValue,
    Op,
    OpResult,
    Put,
    PutResult,
    Range,
    RangeResult,
    SortOrder,
    SortTarget,
    Txn,
    TxnResult,
)
from raftkv.state.errors import MSG_KEY_NOT_FOUND, MSG_TOO_MANY_OPS
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.mvccpb import kv_pb2

MSG_INVALID_SORT = "etcdserver: invalid sort option"

_COMPARE_FIELD = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def range_from_pb(p: rpc_pb2.RangeRequest) -> Range:
    """etcd 3.4 leaves a range with an unknown sort order unsorted (key order), so that is
    what such an order becomes here. An unknown sort target makes etcd 3.4 panic; here it
    is an InvalidRequestError (``invalid sort option``)."""
    try:
        target = SortTarget(p.sort_target)
    except ValueError:
        raise InvalidRequestError(MSG_INVALID_SORT) from None
    try:
        order = SortOrder(p.sort_order)
    except ValueError:
        order, target = SortOrder.NONE, SortTarget.KEY
    return Range(key=p.key, range_end=p.range_end, limit=p.limit, revision=p.revision,
                 sort_order=order, sort_target=target,
                 serializable=p.serializable, keys_only=p.keys_only, count_only=p.count_only,
                 min_mod_revision=p.min_mod_revision, max_mod_revision=p.max_mod_revision,
                 min_create_revision=p.min_create_revision,
                 max_create_revision=p.max_create_revision)


def put_from_pb(p: rpc_pb2.PutRequest) -> Put:
    return Put(key=p.key, value=p.value, lease=p.lease, prev_kv=p.prev_kv,
               ignore_value=p.ignore_value, ignore_lease=p.ignore_lease)


def delete_from_pb(p: rpc_pb2.DeleteRangeRequest) -> DeleteRange:
    return DeleteRange(key=p.key, range_end=p.range_end, prev_kv=p.prev_kv)


def compact_from_pb(p: rpc_pb2.CompactionRequest) -> Compact:
    return Compact(revision=p.revision, physical=p.physical)


def compare_from_pb(p: rpc_pb2.Compare) -> Compare:
    """etcd ``compareKV`` reads the operand only from the union member matching ``target``;
    any other member (or none) compares as 0 / ``b""``, which the wrong-typed operand
    reproduces in the state machine."""
    try:
        target, result = CompareTarget(p.target), CompareResult(p.result)
    except ValueError:
        raise InvalidRequestError("etcdserver: invalid compare target or result") from None
    want = _COMPARE_FIELD[target]
    operand: int | bytes
    if p.WhichOneof("target_union") == want:
        operand = getattr(p, want)
    else:
        operand = 0 if target == CompareTarget.VALUE else b""
    return Compare(key=p.key, target=target, result=result, operand=operand,
                   range_end=p.range_end)


def op_from_pb(p: rpc_pb2.RequestOp) -> Op:
    """One ``RequestOp``; an empty one is etcd's ``key not found`` (``checkRequestOp``)."""
    which = p.WhichOneof("request")
    if which == "request_range":
        return range_from_pb(p.request_range)
    if which == "request_put":
        return put_from_pb(p.request_put)
    if which == "request_delete_range":
        return delete_from_pb(p.request_delete_range)
    if which == "request_txn":
        return txn_from_pb(p.request_txn)
    raise InvalidRequestError(MSG_KEY_NOT_FOUND)


def txn_from_pb(p: rpc_pb2.TxnRequest) -> Txn:
    return Txn(compare=tuple(compare_from_pb(c) for c in p.compare),
               success=tuple(op_from_pb(op) for op in p.success),
               failure=tuple(op_from_pb(op) for op in p.failure))


def check_txn_ops(p: rpc_pb2.TxnRequest, max_ops: int) -> None:
    """etcd's op limit on the message itself, before converting it: the largest of the three
    lists must not exceed ``max_ops``; a nested txn gets what is left of the budget.

    Raises:
        InvalidRequestError: ``etcdserver: too many operations in txn request``.
    """
    opc = max(len(p.compare), len(p.success), len(p.failure))
    if opc > max_ops:
        raise InvalidRequestError(MSG_TOO_MANY_OPS)
    for op in (*p.success, *p.failure):
        if op.WhichOneof("request") == "request_txn":
            check_txn_ops(op.request_txn, max_ops - opc)


def kv_to_pb(kv: KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(key=kv.key, create_revision=kv.create_revision,
                           mod_revision=kv.mod_revision, version=kv.version, value=kv.value,
                           lease=kv.lease)


def range_result_to_pb(r: RangeResult, header: rpc_pb2.ResponseHeader,
                       ) -> rpc_pb2.RangeResponse:
    out = rpc_pb2.RangeResponse(header=header, more=r.more, count=r.count)
    out.kvs.extend(kv_to_pb(kv) for kv in r.kvs)
    return out


def put_result_to_pb(r: PutResult, header: rpc_pb2.ResponseHeader) -> rpc_pb2.PutResponse:
    out = rpc_pb2.PutResponse(header=header)
    if r.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_to_pb(r.prev_kv))
    return out


def delete_result_to_pb(r: DeleteResult, header: rpc_pb2.ResponseHeader,
                        ) -> rpc_pb2.DeleteRangeResponse:
    out = rpc_pb2.DeleteRangeResponse(header=header, deleted=r.deleted)
    out.prev_kvs.extend(kv_to_pb(kv) for kv in r.prev_kvs)
    return out


def compact_result_to_pb(r: CompactResult, header: rpc_pb2.ResponseHeader,
                         ) -> rpc_pb2.CompactionResponse:
    return rpc_pb2.CompactionResponse(header=header)


def _op_result_to_pb(r: OpResult) -> rpc_pb2.ResponseOp:
    """Inside a txn etcd sets only ``revision`` in the header of a range, put or delete
    response, and leaves the header of a nested txn response empty."""
    inner = rpc_pb2.ResponseHeader(revision=r.revision)
    if isinstance(r, RangeResult):
        return rpc_pb2.ResponseOp(response_range=range_result_to_pb(r, inner))
    if isinstance(r, PutResult):
        return rpc_pb2.ResponseOp(response_put=put_result_to_pb(r, inner))
    if isinstance(r, DeleteResult):
        return rpc_pb2.ResponseOp(response_delete_range=delete_result_to_pb(r, inner))
    return rpc_pb2.ResponseOp(response_txn=txn_result_to_pb(r, rpc_pb2.ResponseHeader()))


def txn_result_to_pb(r: TxnResult, header: rpc_pb2.ResponseHeader) -> rpc_pb2.TxnResponse:
    out = rpc_pb2.TxnResponse(header=header, succeeded=r.succeeded)
    out.responses.extend(_op_result_to_pb(op) for op in r.responses)
    return out
