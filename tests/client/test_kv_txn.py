"""raftkv.client KV, Txn, errors, the sync facade and request-id de-duplication, against a
real 3-member cluster."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from raftkv.client import Client, Compare, Op, RetryPolicy, SyncClient, TxnResponse
from raftkv.client._transport import REQUEST_ID_KEY
from raftkv.errors import (
    CompactedError,
    ConfigError,
    FutureRevisionError,
    InvalidRequestError,
    LeaseNotFoundError,
    UnavailableError,
)
from raftkv.server.services import kv as kv_service
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.client.conftest import run
from tests.integration import procs
from tests.integration.procs import ProcCluster, free_ports


def test_put_get_range_delete_with_metadata(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            p1 = await c.put(prefix + "a", "1")
            p2 = await c.put(prefix + "a", b"2", prev_kv=True)
            assert p2.revision == p1.revision + 1
            assert p2.prev_kv is not None
            assert p2.prev_kv.value == b"1"
            kv = await c.get(prefix + "a")
            assert kv is not None
            assert (kv.value, kv.version) == (b"2", 2)
            assert (kv.create_revision, kv.mod_revision) == (p1.revision, p2.revision)
            old = await c.get(prefix + "a", revision=p1.revision)
            assert old is not None
            assert old.value == b"1"
            assert await c.get(prefix + "missing") is None
            for k in "bcd":
                await c.put(prefix + k, k * 3)
            r = await c.get_prefix(prefix, sort_order="descend", limit=2)
            assert [x.key for x in r.kvs] == [(prefix + k).encode() for k in "dc"]
            assert (r.count, r.more) == (4, True)
            keys = await c.get_prefix(prefix, keys_only=True)
            assert all(x.value == b"" for x in keys.kvs)
            assert (await c.get_prefix(prefix, count_only=True)).count == 4
            ser = await c.get(prefix + "b", serializable=True)
            assert ser is not None
            assert ser.value == b"bbb"
            between = await c.range(prefix + "b", prefix + "d")
            assert [x.key[-1:] for x in between.kvs] == [b"b", b"c"]
            assert (await c.delete(prefix + "b")).deleted == 1
            d = await c.delete_prefix(prefix, prev_kv=True)
            assert d.deleted == 3
            assert sorted(x.value for x in d.prev_kvs) == [b"2", b"ccc", b"ddd"]
            assert (await c.get_prefix(prefix)).kvs == ()
    run(body())


def test_txn_builder_compares_and_branches(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            k = prefix + "cfg"
            created = await c.txn().if_(Compare.missing(k)).then(Op.put(k, "v1")).commit()
            assert created.succeeded
            again = await c.txn().if_(Compare.missing(k)).then(Op.put(k, "x")) \
                .otherwise(Op.get(k)).commit()
            assert not again.succeeded
            (got,) = again.responses
            assert got.kvs[0].value == b"v1"  # type: ignore[union-attr]
            kv = await c.get(k)
            assert kv is not None
            base = c.txn().if_(Compare.value(k).equal("v1"), Compare.version(k).equal(1),
                               Compare.create_revision(k).equal(kv.create_revision),
                               Compare.mod_revision(k).less(kv.mod_revision + 1),
                               Compare.lease(k).equal(0), Compare.value(k, "!=", b"zz"))
            r = await base.then(Op.put(k, "v2", prev_kv=True), Op.get(k),
                                Op.txn(c.txn().if_(Compare.exists(k)).then(
                                    Op.delete(prefix + "nothing")))).commit()
            assert r.succeeded
            put, get, nested = r.responses
            assert put.prev_kv is not None  # type: ignore[union-attr]
            assert get.kvs[0].value == b"v2"  # type: ignore[union-attr]
            assert isinstance(nested, TxnResponse)
            assert nested.succeeded
            # the builder is immutable: base still compares against v1 and now fails
            assert not (await base.commit()).succeeded
            ranged = await c.txn().if_(Compare.version(prefix, prefix=True).greater(0)) \
                .then(Op.get(prefix, prefix=True)).commit()
            assert ranged.succeeded
            with pytest.raises(TypeError):
                c.txn().if_("not a compare")  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                Compare.version(k).equal(b"bytes")
    run(body())


def test_errors_map_onto_the_exception_tree(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            with pytest.raises(InvalidRequestError, match="key is not provided"):
                await c.put("", "x")
            r = await c.put(prefix + "k", "1")
            with pytest.raises(FutureRevisionError):
                await c.get(prefix + "k", revision=r.revision + 1000)
            with pytest.raises(LeaseNotFoundError):
                await c.put(prefix + "k", "1", lease=12345)
            await c.put(prefix + "k", "2")
            await c.compact(r.revision + 1)
            with pytest.raises(CompactedError) as info:
                await c.get(prefix + "k", revision=r.revision)
            assert info.value.grpc_code == "OUT_OF_RANGE"
    run(body())


def test_unreachable_endpoints_fail_within_the_deadline() -> None:
    async def body() -> None:
        (port,) = free_ports(1)
        policy = RetryPolicy(deadline_s=1.0, attempt_timeout_s=0.3)
        async with Client(f"127.0.0.1:{port}", retry=policy) as c:
            with pytest.raises(UnavailableError):
                await c.get("k")
    run(body())
    with pytest.raises(ConfigError, match="no port"):
        Client("localhost")


def test_dead_first_endpoint_fails_over_to_a_live_member(cluster: ProcCluster,
                                                         prefix: str) -> None:
    (port,) = free_ports(1)

    async def body() -> None:
        async with Client([f"127.0.0.1:{port}", cluster.members[1].endpoint]) as c:
            await c.put(prefix + "k", "v")  # the first endpoint refuses: never sent, retried
            kv = await c.get(prefix + "k")
            assert kv is not None
            assert kv.value == b"v"
            assert c._dedup is True  # raftkv answered the probe
    run(body())


def test_sync_client_forwards_to_the_async_client(cluster: ProcCluster, prefix: str) -> None:
    with SyncClient(cluster.endpoints) as c:
        c.put(prefix + "a", "1")
        kv = c.get(prefix + "a")
        assert kv.value == b"1"
        r = c.txn().if_(Compare.value(prefix + "a").equal("1")).then(
            Op.put(prefix + "a", "2")).commit()
        assert r.succeeded
        with c.lock(prefix + "lock", ttl=5) as lock:
            assert lock.fencing_token > 0
            lock.put(prefix + "guarded", "yes")
        with c.lease(ttl=5) as lease:
            c.put(prefix + "leased", "x", lease=lease.id)
            assert c.time_to_live(lease.id).ttl > 0

        def incr(stm: object) -> int:
            n = int(stm.get(prefix + "n") or b"0") + 1  # type: ignore[attr-defined]
            stm.put(prefix + "n", str(n))  # type: ignore[attr-defined]
            return n
        assert c.stm(incr) == 1
        assert c.stm(incr) == 2
        assert c.get(prefix + "guarded").value == b"yes"


def _raw_put(cluster: ProcCluster, key: bytes, value: bytes, rid: str | None) -> int:
    with grpc.insecure_channel(cluster.members[0].endpoint) as ch:
        stub = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
        md = ((REQUEST_ID_KEY, rid),) if rid else None
        r = stub.Put(rpc_pb2.PutRequest(key=key, value=value), metadata=md, timeout=10)
        return int(r.header.revision)


def test_same_request_id_applies_once(cluster: ProcCluster, prefix: str) -> None:
    """A write retried with the same raftkv-request-id gets the first result, applied once;
    without the metadata every write applies (etcd's behaviour)."""
    key = (prefix + "dedup").encode()
    first = _raw_put(cluster, key, b"v", "abc123-1-1")
    assert _raw_put(cluster, key, b"v", "abc123-1-1") == first
    assert _raw_put(cluster, key, b"v", "abc123-2-1") == first + 1
    plain = _raw_put(cluster, key, b"v", None)
    assert _raw_put(cluster, key, b"v", None) == plain + 1

    async def check() -> None:
        async with Client(cluster.endpoints) as c:
            kv = await c.get(key)
            assert kv is not None
            assert kv.version == 4
    run(check())
    with pytest.raises(grpc.RpcError) as info:
        _raw_put(cluster, key, b"v", "not-an-id")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert REQUEST_ID_KEY == kv_service.REQUEST_ID_KEY


def test_empty_prefix_reads_and_deletes_every_key(tmp_path: Path) -> None:
    """etcd's clientv3 turns the prefix "" into [\\0, \\0): every key. (Its own cluster:
    this deletes everything.)"""
    async def body(endpoints: str) -> None:
        async with Client(endpoints) as c:
            await c.put("a", "1")
            await c.put("z/z", "2")
            assert [kv.key for kv in (await c.get_prefix("")).kvs] == [b"a", b"z/z"]
            r = await c.txn().if_(Compare.version("", prefix=True).greater(0)).then(
                Op.get("", prefix=True, count_only=True)).commit()
            assert r.succeeded
            assert (await c.delete_prefix("")).deleted == 2
            assert (await c.get_all(count_only=True)).count == 0
    with procs.cluster(tmp_path, 1) as one:
        one.leader()
        run(body(one.endpoints))
