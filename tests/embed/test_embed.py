# mypy: disable-error-code="no-untyped-call"
"""raftkv.embed: a member inside the test's own process, reached in-process and over gRPC.

The in-process path (LocalChannel) must behave like the network path: same handlers, same
validation, same etcd error codes and messages, streams included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from raftkv import embed
from raftkv.errors import ConfigError
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import free_ports

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 90))


async def _error_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


def test_single_member_in_process_and_over_grpc(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1", name="n1") as node:
            assert node.is_leader
            assert node.leader_id == node.member_id
            kv = rpc_pb2_grpc.KVStub(node.channel)
            put = await kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v1"))
            assert put.header.member_id == node.member_id
            got = await kv.Range(rpc_pb2.RangeRequest(key=b"k"))
            assert [(x.key, x.value) for x in got.kvs] == [(b"k", b"v1")]
            async with grpc.aio.insecure_channel(node.endpoints[0]) as ch:
                net = await rpc_pb2_grpc.KVStub(ch).Range(rpc_pb2.RangeRequest(key=b"k"))
            assert net.kvs[0].mod_revision == got.kvs[0].mod_revision
    run(scenario())


def test_errors_match_the_network_path(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1") as node, \
                grpc.aio.insecure_channel(node.endpoints[0]) as ch:
            local, net = rpc_pb2_grpc.KVStub(node.channel), rpc_pb2_grpc.KVStub(ch)
            bad = [rpc_pb2.PutRequest(key=b"", value=b"x"),
                   rpc_pb2.PutRequest(key=b"k", value=b"x", lease=12345)]
            for req in bad:
                assert await _error_of(local.Put(req)) == await _error_of(net.Put(req))
            code, msg = await _error_of(local.Put(bad[0]))
            assert code is grpc.StatusCode.INVALID_ARGUMENT
            assert msg == "etcdserver: key is not provided"
            lease = rpc_pb2_grpc.LeaseStub(node.channel)
            code, msg = await _error_of(lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=99)))
            assert (code, msg) == (grpc.StatusCode.NOT_FOUND,
                                   "etcdserver: requested lease not found")
    run(scenario())


def test_watch_and_keepalive_streams_in_process(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1") as node:
            kv = rpc_pb2_grpc.KVStub(node.channel)
            call = rpc_pb2_grpc.WatchStub(node.channel).Watch()
            create = rpc_pb2.WatchCreateRequest(key=b"w/", range_end=b"w0", prev_kv=True)
            await call.write(rpc_pb2.WatchRequest(create_request=create))
            assert (await call.read()).created
            for i in range(3):
                await kv.Put(rpc_pb2.PutRequest(key=b"w/a", value=b"%d" % i))
            seen: list[bytes] = []
            while len(seen) < 3:
                resp = await call.read()
                seen += [ev.kv.value for ev in resp.events]
            assert seen == [b"0", b"1", b"2"]
            call.cancel()
            lease = rpc_pb2_grpc.LeaseStub(node.channel)
            grant = await lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=30))

            async def pings() -> Any:
                for _ in range(2):
                    yield rpc_pb2.LeaseKeepAliveRequest(ID=grant.ID)

            ttls = [r.TTL async for r in lease.LeaseKeepAlive(pings())]
            assert ttls == [30, 30]
    run(scenario())


def test_restart_keeps_identity_ports_and_data(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[str]]:
        async with embed.start_node(tmp_path / "n1") as node:
            await rpc_pb2_grpc.KVStub(node.channel).Put(rpc_pb2.PutRequest(key=b"a", value=b"1"))
            return node.member_id, node.endpoints

    first = run(scenario())
    saved = json.loads((tmp_path / "n1" / embed.URLS_FILE).read_text())
    assert saved["listen_client_urls"] == f"http://{first[1][0]}"

    async def again() -> tuple[int, list[str], bytes]:
        async with embed.start_node(tmp_path / "n1") as node:
            got = await rpc_pb2_grpc.KVStub(node.channel).Range(rpc_pb2.RangeRequest(key=b"a"))
            return node.member_id, node.endpoints, got.kvs[0].value

    member_id, endpoints, value = run(again())
    assert (member_id, endpoints, value) == (first[0], first[1], b"1")


def test_three_embedded_members_in_one_process(tmp_path: Path) -> None:
    ports = free_ports(6)
    cluster = {f"n{i}": f"http://127.0.0.1:{ports[2 * i - 1]}" for i in (1, 2, 3)}
    initial = ",".join(f"{n}={u}" for n, u in cluster.items())

    async def member(name: str, i: int) -> Any:
        return embed.start_node(
            tmp_path / name, name=name, listen_peer_urls=cluster[name],
            listen_client_urls=f"http://127.0.0.1:{ports[2 * i - 2]}",
            initial_cluster=initial)

    async def scenario() -> None:
        managers = [await member(n, i) for i, n in enumerate(cluster, 1)]
        nodes = await asyncio.gather(*(m.__aenter__() for m in managers))
        try:
            leaders = {n.leader_id for n in nodes}
            assert len(leaders) == 1
            assert leaders != {0}
            follower = next(n for n in nodes if not n.is_leader)
            kv = rpc_pb2_grpc.KVStub(follower.channel)
            await kv.Put(rpc_pb2.PutRequest(key=b"x", value=b"through a follower"))
            for n in nodes:
                got = await rpc_pb2_grpc.KVStub(n.channel).Range(rpc_pb2.RangeRequest(key=b"x"))
                assert got.kvs[0].value == b"through a follower"
        finally:
            for m in managers:
                await m.__aexit__(None, None, None)
    run(scenario())


def test_sync_facade_runs_on_a_background_thread(tmp_path: Path) -> None:
    with embed.start_node_sync(tmp_path / "n1") as node:
        kv = rpc_pb2_grpc.KVStub(node.channel)
        node.run(kv.Put(rpc_pb2.PutRequest(key=b"s", value=b"sync")))
        got = node.run(kv.Range(rpc_pb2.RangeRequest(key=b"s")))
        assert got.kvs[0].value == b"sync"
        endpoint = node.endpoints[0]
    # stopped on exit: the port is closed
    with grpc.insecure_channel(endpoint) as ch, pytest.raises(grpc.RpcError):
        rpc_pb2_grpc.KVStub(ch).Range(rpc_pb2.RangeRequest(key=b"s"), timeout=1)


def test_bad_options_are_one_line_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        run(embed.start_node(tmp_path / "n1", colour="blue").__aenter__())
    with pytest.raises(ConfigError, match="heartbeat"):
        run(embed.start_node(tmp_path / "n2", heartbeat_interval=0).__aenter__())


def test_in_process_client_has_the_whole_api(tmp_path: Path) -> None:
    from raftkv.client import Compare, Op

    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1") as node:
            client = node.client()
            await client.put("cfg/mode", "active")
            kv = await client.get("cfg/mode")
            assert kv is not None
            assert kv.value == b"active"
            r = await (client.txn().if_(Compare.value("cfg/mode").equal(b"active"))
                       .then(Op.put("cfg/mode", b"standby")).commit())
            assert r.succeeded
            async with client.lock("job") as lock:
                assert lock.fencing_token > 0
                await lock.put("job/owner", "me")  # guarded by the token
            async with client.watch("cfg/", prefix=True,
                                    start_revision=kv.mod_revision) as events:
                seen = []
                async for ev in events:
                    seen.append(ev.value)
                    if len(seen) == 2:
                        break
            assert seen == [b"active", b"standby"]
            await client.close()
            # the member is still serving after a client closed
            assert (await node.client().get("job/owner")) is not None
    run(scenario())


def test_sync_client_of_an_embedded_member(tmp_path: Path) -> None:
    with embed.start_node_sync(tmp_path / "n1") as node:
        client = node.client()
        client.put("k", "v")
        kv = client.get("k")
        assert kv is not None
        assert kv.value == b"v"
        with client.lock("sync-lock") as lock:
            assert lock.fencing_token > kv.mod_revision
        client.close()
        assert node.is_leader  # closing the facade left the member's loop running


def test_client_forgotten_by_the_server_starts_a_new_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's de-duplication table evicted this client: its next write is refused as
    stale (it could be a retry of an applied one); a first attempt is re-sent in a new
    session and applies exactly once."""
    from raftkv.state import dedup

    monkeypatch.setattr(dedup, "MAX_CLIENTS", 2)

    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1") as node:
            a, b, c = node.client(), node.client(), node.client()
            await a.put("k", "1")
            first_id = a.client_id
            await b.put("x", "b")
            await c.put("x", "c")  # a is evicted
            r = await a.put("k", "2")
            assert a.client_id != first_id
            kv = await a.get("k")
            assert kv is not None
            assert (kv.value, kv.version, kv.mod_revision) == (b"2", 2, r.revision)
            for cl in (a, b, c):
                await cl.close()
    run(scenario())


def test_embedding_raises_gc_thresholds_unless_told_not_to(tmp_path: Path) -> None:
    import gc

    from raftkv.server import collector
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)

        async def scenario(tune: bool) -> tuple[int, int, int]:
            async with embed.start_node(tmp_path / "n1", tune_gc=tune):
                return gc.get_threshold()

        assert run(scenario(False)) == (700, 10, 10)
        assert run(scenario(True))[0] == collector.YOUNG_THRESHOLD
    finally:
        gc.set_threshold(*saved)
