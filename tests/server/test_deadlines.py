"""The node driver's request deadlines: a request still pending at its deadline fails with
etcd's timeout; a request that ended is forgotten at once (not held until its deadline)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from raftkv import embed
from raftkv.server.node import RequestTimeoutError, _Deadlines
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc


def test_only_pending_futures_past_their_deadline_fail() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = _Deadlines()
        early, answered, late = (loop.create_future() for _ in range(3))
        deadlines.add(10.0, early)
        deadlines.add(11.0, answered)
        deadlines.add(12.0, late)
        answered.set_result("ok")
        deadlines.discard(answered)
        assert len(deadlines) == 2
        deadlines.expire(9.9)
        assert not early.done()
        deadlines.expire(11.5)
        with pytest.raises(RequestTimeoutError, match="etcdserver: request timed out"):
            early.result()
        assert not late.done()
        assert len(deadlines) == 1
        deadlines.expire(12.0)
        assert late.done()
        assert isinstance(late.exception(), RequestTimeoutError)
        assert len(deadlines) == 0
    asyncio.run(main())


def test_a_member_holds_no_deadline_for_answered_requests(tmp_path: Path) -> None:
    async def main() -> None:
        async with embed.start_node(tmp_path / "n1") as node:
            kv = rpc_pb2_grpc.KVStub(node.channel)  # type: ignore[no-untyped-call]
            for round_ in range(4):
                await asyncio.gather(*(
                    kv.Put(rpc_pb2.PutRequest(key=b"k%d" % i, value=b"%d" % round_))
                    for i in range(50)))
                await asyncio.gather(*(kv.Range(rpc_pb2.RangeRequest(key=b"k%d" % i))
                                       for i in range(50)))
            driver = node._server.driver
            assert driver is not None
            assert len(driver._deadlines) == 0
    asyncio.run(asyncio.wait_for(main(), 60))
