"""Conversions between the etcd v3 protobuf messages and the state machine's commands and
results. The only place where ``etcdserverpb`` / ``mvccpb`` meet ``raftkv.state``."""

from __future__ import annotations

from raftkv.state.commands import (
    DeleteRange,
    DeleteResult,
    KeyValue,
    Put,
    PutResult,
    Range,
    RangeResult,
    SortOrder,
    SortTarget,
)
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.mvccpb import kv_pb2


def range_from_pb(p: rpc_pb2.RangeRequest) -> Range:
    return Range(key=p.key, range_end=p.range_end, limit=p.limit, revision=p.revision,
                 sort_order=SortOrder(p.sort_order), sort_target=SortTarget(p.sort_target),
                 serializable=p.serializable, keys_only=p.keys_only, count_only=p.count_only,
                 min_mod_revision=p.min_mod_revision, max_mod_revision=p.max_mod_revision,
                 min_create_revision=p.min_create_revision,
                 max_create_revision=p.max_create_revision)


def put_from_pb(p: rpc_pb2.PutRequest) -> Put:
    return Put(key=p.key, value=p.value, lease=p.lease, prev_kv=p.prev_kv,
               ignore_value=p.ignore_value, ignore_lease=p.ignore_lease)


def delete_from_pb(p: rpc_pb2.DeleteRangeRequest) -> DeleteRange:
    return DeleteRange(key=p.key, range_end=p.range_end, prev_kv=p.prev_kv)


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
