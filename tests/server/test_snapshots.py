# mypy: disable-error-code="no-untyped-call"
"""A member's own snapshots record only an index: the state is the backend, made durable by
the snapshot's fsync'ed write, and the log below it is compacted. The data a follower needs
is produced when it is sent (``NodeDriver.snapshot_data``). A state that a crash left behind a
received snapshot is restored from the stored copy at start."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from raftkv import embed
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.node import split_snapshot_data
from raftkv.state.commands import Range
from raftkv.state.machine import StateMachine
from raftkv.storage.store import Store
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

T = TypeVar("T")
KEYS = 300


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 90))


def test_a_snapshot_holds_no_data_and_a_restart_keeps_the_state(tmp_path: Path) -> None:
    opts: dict[str, Any] = {"snapshot_count": 50, "snapshot_catchup_entries": 10}

    async def write() -> bytes:
        async with embed.start_node(tmp_path / "n1", **opts) as node:
            kv = rpc_pb2_grpc.KVStub(node.channel)
            for i in range(KEYS):
                await kv.Put(rpc_pb2.PutRequest(key=b"k%03d" % i, value=b"v%d" % i))
            driver = node._server.driver
            assert driver is not None
            return await driver.snapshot_data()  # what a follower would be sent, as of now

    data = run(write())
    with Store.open(tmp_path / "n1") as store:
        snap = store.log.snapshot()
        assert snap.data == b""  # an index only: nothing encoded
        assert snap.meta.index > KEYS - 50
        assert store.log.first_index() > snap.meta.index - 10 - 1  # compacted behind it
    with Store.open(tmp_path / "copy") as other:
        fresh = StateMachine(other.backend)
        fresh.restore(split_snapshot_data(data)[0])
        assert fresh.applied_index >= snap.meta.index  # the data covers the snapshot's index
        assert len(fresh.range(Range(key=b"k", range_end=b"l")).kvs) == KEYS

    async def read() -> list[bytes]:
        async with embed.start_node(tmp_path / "n1", **opts) as node:
            got = await rpc_pb2_grpc.KVStub(node.channel).Range(
                rpc_pb2.RangeRequest(key=b"k", range_end=b"l"))
            return [kv.value for kv in got.kvs]

    assert run(read()) == [b"v%d" % i for i in range(KEYS)]



def test_a_state_left_behind_a_received_snapshot_is_restored_at_start(tmp_path: Path) -> None:
    """A power loss right after a follower fsynced a leader's snapshot, before its restored
    state (written without fsync) reached the disk: the state is behind a log that starts
    after the snapshot. The member restores the stored copy when it starts."""

    async def write() -> None:
        async with embed.start_node(tmp_path / "n1") as node:
            kv = rpc_pb2_grpc.KVStub(node.channel)
            for i in range(KEYS):
                await kv.Put(rpc_pb2.PutRequest(key=b"k%03d" % i, value=b"v%d" % i))

    run(write())
    with Store.open(tmp_path / "n1") as store:  # the crash, staged by hand
        sm = StateMachine(store.backend)
        at = sm.applied_index
        meta = SnapshotMeta(at, store.log.term(at), store.log.snapshot_meta().conf_state)
        store.log.apply_snapshot(Snapshot(meta, sm.snapshot()))  # fsynced, with its data
        with Store.open(tmp_path / "empty") as other:
            sm.restore(StateMachine(other.backend).snapshot())  # the state writes: lost
        assert sm.applied_index == 0

    async def read() -> list[bytes]:
        async with embed.start_node(tmp_path / "n1") as node:
            got = await rpc_pb2_grpc.KVStub(node.channel).Range(
                rpc_pb2.RangeRequest(key=b"k", range_end=b"l"))
            return [kv.value for kv in got.kvs]

    assert run(read()) == [b"v%d" % i for i in range(KEYS)]
