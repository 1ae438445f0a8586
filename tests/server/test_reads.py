# mypy: disable-error-code="no-untyped-call"
"""Linearizable reads: one ReadIndex round in flight per member (as etcd's read loop), the
reads that arrive while it runs share the next one, and each read sees every write
acknowledged before it was issued."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from raftkv import embed
from raftkv.server.node import NodeDriver
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import free_ports


@contextlib.asynccontextmanager
async def three_members(root: Path) -> AsyncIterator[list[Any]]:
    ports = free_ports(6)
    peers = {f"n{i}": f"http://127.0.0.1:{ports[2 * i - 1]}" for i in (1, 2, 3)}
    initial = ",".join(f"{n}={u}" for n, u in peers.items())
    async with contextlib.AsyncExitStack() as stack:
        managers = [embed.start_node(root / n, name=n, listen_peer_urls=peers[n],
                                     listen_client_urls=f"http://127.0.0.1:{ports[2 * i - 2]}",
                                     initial_cluster=initial)
                    for i, n in enumerate(peers, 1)]
        nodes = await asyncio.gather(*(stack.enter_async_context(m) for m in managers))
        yield list(nodes)


def _count_rounds(driver: NodeDriver) -> dict[str, int]:
    """Wrap the driver's ReadIndex start: count rounds and the most in flight at once."""
    seen = {"rounds": 0, "most_in_flight": 0}
    raw = driver.raw
    start = raw.read_index

    def counted(ctx: bytes) -> None:
        seen["rounds"] += 1
        seen["most_in_flight"] = max(seen["most_in_flight"], len(driver._read_batches) + 1)
        start(ctx)

    raw.read_index = counted  # type: ignore[method-assign]
    return seen


def test_reads_share_one_round_in_flight_and_see_prior_writes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with three_members(tmp_path) as nodes:
            follower = next(n for n in nodes if not n.is_leader)
            driver = follower._server.driver
            kv = rpc_pb2_grpc.KVStub(follower.channel)
            seen = _count_rounds(driver)

            async def read_after_write(i: int) -> None:
                for _ in range(i % 7):
                    await asyncio.sleep(0)  # spread the reads over many loop iterations
                await kv.Put(rpc_pb2.PutRequest(key=b"r/%d" % i, value=b"%d" % i))
                got = await kv.Range(rpc_pb2.RangeRequest(key=b"r/%d" % i))
                assert [x.value for x in got.kvs] == [b"%d" % i]

            await asyncio.gather(*(read_after_write(i) for i in range(200)))
            assert seen["most_in_flight"] == 1
            assert 1 <= seen["rounds"] < 200  # shared: far fewer rounds than reads

    asyncio.run(asyncio.wait_for(scenario(), 90))
