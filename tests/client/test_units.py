"""Pure parts of the client: error mapping, prefix ends, the txn builder, endpoints."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from raftkv import certs
from raftkv import errors as e
from raftkv.client import TLS, Compare, GrpcTransport, Op, RetryPolicy, Txn
from raftkv.client._errors import classify, never_sent
from raftkv.client._transport import certificate_name, parse_endpoints
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



# -- TLS without verification (insecure_skip_verify): in-process servers, real handshakes ---

def _range_server(leaf: certs.Issued, port: int = 0) -> tuple[grpc.aio.Server, str]:
    """A grpc.aio server over TLS with ``leaf`` that answers KV.Range (count 7)."""
    async def range_(request: rpc_pb2.RangeRequest, context: object) -> rpc_pb2.RangeResponse:
        return rpc_pb2.RangeResponse(count=7)

    handler = grpc.method_handlers_generic_handler("etcdserverpb.KV", {
        "Range": grpc.unary_unary_rpc_method_handler(
            range_, request_deserializer=rpc_pb2.RangeRequest.FromString,
            response_serializer=rpc_pb2.RangeResponse.SerializeToString)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(leaf.key_pem(), leaf.cert_pem())])
    bound = server.add_secure_port(f"127.0.0.1:{port}", creds)
    return server, f"127.0.0.1:{bound}"


def test_skip_verify_trusts_each_members_own_certificate() -> None:
    async def main() -> None:
        ca = certs.make_ca()  # a CA the client does not know: verification fails
        servers = [_range_server(certs.issue(ca, f"n{i}", hosts=("localhost",)))
                   for i in (1, 2)]
        for server, _ in servers:
            await server.start()
        eps = [ep for _, ep in servers]
        try:
            skip = GrpcTransport(eps, tls=TLS(insecure_skip_verify=True))
            for _ in eps:  # each member presents its own certificate, pinned per member
                got = await skip.kv.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=5)
                assert got.count == 7
                skip.failover(skip.generation)
            await skip.close()
            strict = GrpcTransport(eps[:1], tls=TLS())  # the system roots: refused
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await strict.kv.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=2)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            await strict.close()
        finally:
            for server, _ in servers:
                await server.stop(None)

    asyncio.run(main())


def test_skip_verify_peeks_again_after_a_failover() -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t = GrpcTransport(f"127.0.0.1:{port}", tls=TLS(insecure_skip_verify=True))
        with pytest.raises(grpc.aio.AioRpcError):  # nothing listens yet: nothing to peek at
            await t.kv.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=1)
        # a certificate for another address: only the name it carries is checked
        server, _ = _range_server(certs.issue(certs.make_ca(), "n1", hosts=("10.9.8.7",)),
                                  port)
        await server.start()
        try:
            t.failover(t.generation)  # what the client does after UNAVAILABLE
            got = await t.kv.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=5)
            assert got.count == 7
        finally:
            await t.close()
            await server.stop(None)

    asyncio.run(main())


def test_certificate_name_is_one_the_certificate_carries() -> None:
    ca = certs.make_ca()

    def name(hosts: tuple[str, ...], cn: str = "member") -> str | None:
        leaf = certs.issue(ca, cn, hosts=hosts, server=bool(hosts))
        return certificate_name(leaf.cert.public_bytes(serialization.Encoding.DER))

    assert name(("10.0.0.1", "db.example.com")) == "db.example.com"
    assert name(("*.rk.example.com",)) == "skip-verify.rk.example.com"
    assert name(("::1",)) == "::1"
    assert name((), "client") == "client"
