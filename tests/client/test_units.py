"""Pure parts of the client: error mapping, prefix ends, the txn builder, endpoints."""

from __future__ import annotations

import grpc
import pytest

from raftkv import errors as e
from raftkv.client import Compare, Op, RetryPolicy, Txn
from raftkv.client._errors import classify, never_sent
from raftkv.client._transport import parse_endpoints
from raftkv.client.types import prefix_end
from raftkv.wire.pb.etcdserverpb import rpc_pb2


@pytest.mark.parametrize(("code", "details", "cls"), [
    ("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted",
     e.CompactedError),
    ("OUT_OF_RANGE", "etcdserver: mvcc: required revision is a future revision",
     e.FutureRevisionError),
    ("NOT_FOUND", "etcdserver: requested lease not found", e.LeaseNotFoundError),
    ("UNAVAILABLE", "etcdserver: no leader", e.UnavailableError),
    ("UNAVAILABLE", "etcdserver: not leader", e.NotLeaderError),
    ("UNAVAILABLE", "etcdserver: request timed out", e.UnavailableError),
    ("UNAVAILABLE", "failed to connect to all addresses", e.UnavailableError),
    ("DEADLINE_EXCEEDED", "Deadline Exceeded", e.DeadlineExceededError),
    ("INVALID_ARGUMENT", "etcdserver: key is not provided", e.InvalidRequestError),
    ("RESOURCE_EXHAUSTED", "etcdserver: mvcc: database space exceeded", e.NoSpaceError),
    ("UNKNOWN", "election: not leader", e.NotElectedError),
    ("UNKNOWN", "election: no leader", e.NoLeaderElectedError),
    ("UNKNOWN", "mutex: session is expired", e.LockLostError),
    ("NOT_FOUND", "etcdserver: member not found", e.ClusterError),
    ("INTERNAL", "something else", e.RaftKVError),
])
def test_status_and_message_map_to_one_exception(code: str, details: str,
                                                 cls: type[e.RaftKVError]) -> None:
    assert classify(grpc.StatusCode[code], details) is cls


def test_only_connection_failures_count_as_never_sent() -> None:
    refused = e.UnavailableError("failed to connect to all addresses; connection refused")
    refused.grpc_code = "UNAVAILABLE"
    timed_out = e.UnavailableError("etcdserver: request timed out")
    timed_out.grpc_code = "UNAVAILABLE"
    assert never_sent(refused)
    assert not never_sent(timed_out)


def test_prefix_end_follows_etcd() -> None:
    assert prefix_end(b"a/") == b"a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"
    assert prefix_end(b"") == b"\0"


def test_txn_builder_is_immutable_and_encodes_compares() -> None:

    t1 = Txn().if_(Compare.value("k").equal("v"))
    t2 = t1.then(Op.put("k", "w")).otherwise(Op.get("k", prefix=True))
    assert t1.success == ()
    pb = t2.to_pb()
    assert pb.compare[0].target == rpc_pb2.Compare.VALUE
    assert pb.compare[0].value == b"v"
    assert pb.success[0].request_put.value == b"w"
    assert pb.failure[0].request_range.range_end == b"l"
    assert not t2.read_only
    assert Txn().then(Op.get("k")).read_only
    c = Compare.mod_revision("k").less(7).to_pb()
    assert (c.result, c.mod_revision) == (rpc_pb2.Compare.LESS, 7)
    assert Compare.value("k", "!=", "x").result == rpc_pb2.Compare.NOT_EQUAL
    with pytest.raises(ValueError, match="relation"):
        Compare.version("k").relation("~", 1)


def test_endpoints_and_policy_are_validated() -> None:
    assert parse_endpoints("http://a:1, b:2") == (["a:1", "b:2"], False)
    assert parse_endpoints(["https://a:1"]) == (["a:1"], True)
    with pytest.raises(e.ConfigError, match="no port"):
        parse_endpoints("a")
    with pytest.raises(e.ConfigError, match="attempt_timeout_s"):
        RetryPolicy(attempt_timeout_s=0)


def test_an_empty_prefix_means_every_key_as_in_clientv3() -> None:
    everything = (b"\0", b"\0")
    r = Op.get("", prefix=True).request.request_range
    assert (r.key, r.range_end) == everything
    d = Op.delete(b"", prefix=True).request.request_delete_range
    assert (d.key, d.range_end) == everything
    c = Compare.version("", prefix=True).greater(0)
    assert (c.key, c.range_end) == everything
    r = Op.get("a/", prefix=True).request.request_range
    assert (r.key, r.range_end) == (b"a/", b"a0")
