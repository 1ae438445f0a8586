"""Client outcomes: a write that never left (connection refused) is a definite fail; a
write that timed out at a member that accepted the connection is indeterminate (info) and
the client moves on as a new process; a read that errored is a fail. The same through
raftkv.client (--client raftkv)."""

from __future__ import annotations

import asyncio
import random
import socket
import time

from chaos.client import Client, may_have_applied
from chaos.history import EventType, Recorder, Value
from raftkv import errors
from raftkv.wire.pb.etcdserverpb import rpc_pb2


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


async def _put(client: Client, *, read_only: bool = False) -> EventType:
    async def call() -> Value:
        await client.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v"), timeout=client.timeout_s)
        return None
    status, _ = await client.op("write", "k", 1, call, read_only=read_only)
    return status


def test_outcomes() -> None:
    async def main() -> None:
        rec = Recorder(time.monotonic_ns)
        refused = Client(0, 0, f"127.0.0.1:{_closed_port()}", rec, concurrency=4,
                         timeout_s=1.0, rng=random.Random(1))
        assert await _put(refused) is EventType.FAIL
        assert refused.process == 0
        # a member that accepts the connection and then says nothing (SIGSTOPped)
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = int(silent.sockets[0].getsockname()[1])
        stuck = Client(1, 0, f"127.0.0.1:{port}", rec, concurrency=4, timeout_s=0.5,
                       rng=random.Random(2))
        assert await _put(stuck) is EventType.INFO
        assert stuck.process == 5  # a fresh process: the old op may still be in flight
        assert await _put(stuck, read_only=True) is EventType.FAIL
        for c in (refused, stuck):
            await c.close()
        silent.close()
        statuses = [op.status for op in rec.history()]
        assert statuses == [EventType.FAIL, EventType.INFO, EventType.FAIL]
    asyncio.run(main())


def test_raftkv_client_outcomes() -> None:
    """--client raftkv: a write through raftkv.client that ran out of time at a member that
    accepted the connection is info (it may have been applied); a read is fail."""
    async def main() -> None:
        rec = Recorder(time.monotonic_ns)
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = int(silent.sockets[0].getsockname()[1])
        client = Client(2, 0, f"127.0.0.1:{port}", rec, concurrency=4, timeout_s=0.6,
                        rng=random.Random(3), library="raftkv",
                        others=[f"127.0.0.1:{_closed_port()}"])
        assert client.rk is not None

        async def put() -> Value:
            assert client.rk is not None
            await client.rk.put("k", "v", timeout=client.timeout_s)
            return None

        async def get() -> Value:
            assert client.rk is not None
            await client.rk.get("k", timeout=client.timeout_s)
            return None
        assert (await client.op("write", "k", 1, put))[0] is EventType.INFO
        assert client.process == 6
        assert (await client.op("read", "k", None, get, read_only=True))[0] is EventType.FAIL
        await client.close()
        silent.close()
        errors = [op.error or "" for op in rec.history()]
        assert "DeadlineExceededError" in errors[0] or "Unavailable" in errors[0], errors
    asyncio.run(main())


def test_which_raftkv_errors_may_have_applied_a_write() -> None:
    assert may_have_applied(errors.OutcomeUnknownError("x"))
    assert may_have_applied(errors.DeadlineExceededError("x"))
    assert may_have_applied(errors.UnavailableError("x"))
    assert may_have_applied(errors.RaftKVError("unclassified"))
    assert not may_have_applied(errors.InvalidRequestError("x"))
    assert not may_have_applied(errors.PermissionDeniedError("x"))
