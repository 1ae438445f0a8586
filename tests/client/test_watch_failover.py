"""Watch (resume without loss or duplication, compaction) and failover: a watch and a
writer survive kill -9 of the Raft leader -- also when it is the member the client talks
to -- against a real 3-member cluster."""

from __future__ import annotations

import asyncio
import time

import pytest

from raftkv.client import Client, EventType
from raftkv.errors import CompactedError
from tests.client.conftest import run
from tests.integration.procs import ProcCluster

WRITES = 60


def test_watch_prefix_events_and_prev_kv(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            start = (await c.put(prefix + "a", "0")).revision
            await c.put(prefix + "a", "1")
            await c.delete(prefix + "a")
            await c.put(prefix + "b", "2")
            got = []
            async with c.watch(prefix, prefix=True, start_revision=start,
                               prev_kv=True) as w:
                async for ev in w:
                    got.append(ev)
                    if len(got) == 4:
                        break
            assert [(e.type, e.key[-1:], e.value) for e in got] == [
                (EventType.PUT, b"a", b"0"), (EventType.PUT, b"a", b"1"),
                (EventType.DELETE, b"a", b""), (EventType.PUT, b"b", b"2")]
            assert got[2].prev_kv is not None
            assert got[2].prev_kv.value == b"1"
            assert [e.revision for e in got] == list(range(start, start + 4))
    run(body())


def test_watch_from_a_compacted_revision_raises(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            first = (await c.put(prefix + "k", "1")).revision
            last = (await c.put(prefix + "k", "2")).revision
            await c.compact(last)
            with pytest.raises(CompactedError) as info:
                async for _ in c.watch(prefix + "k", start_revision=first):
                    pass
            assert info.value.compact_revision >= last
    run(body())


async def _survive_leader_kill(cluster: ProcCluster, prefix: str, client_on_leader: bool,
                               ) -> None:
    leader = cluster.leader()
    others = [m for m in cluster.members if m is not leader]
    first = leader if client_on_leader else others[0]
    endpoints = [first.endpoint] + [m.endpoint for m in cluster.members if m is not first]
    key = prefix + "ctr"
    async with Client(endpoints) as watcher, Client(endpoints) as writer:
        start = (await writer.put(prefix + "start", "x")).revision + 1
        events = []
        done = asyncio.Event()
        watch_obj = watcher.watch(key, start_revision=start)

        async def watch() -> None:
            async with watch_obj as w:
                async for ev in w:
                    events.append(ev)
                    if ev.value == b"%d" % (WRITES - 1):
                        done.set()
                        return

        task = asyncio.create_task(watch())
        revisions = []
        for i in range(WRITES):
            if i == WRITES // 3:
                cluster.kill(leader)  # kill -9, mid-stream
            revisions.append((await writer.put(key, str(i))).revision)
        await asyncio.wait_for(done.wait(), 60)
        await task
        # every write seen exactly once, in order, at the revision it was acknowledged at
        assert [e.value for e in events] == [b"%d" % i for i in range(WRITES)]
        assert [e.revision for e in events] == revisions
        kv = await writer.get(key)
        assert kv is not None
        assert kv.version == WRITES  # no write applied twice by a retry
        if client_on_leader:  # its stream broke: it resumed on another member
            assert watch_obj.reconnects >= 1
            assert watcher.transport.endpoint != leader.endpoint  # type: ignore[attr-defined]


@pytest.mark.parametrize("client_on_leader", [True, False],
                         ids=["client-on-killed-leader", "client-on-follower"])
def test_watch_and_writes_survive_leader_kill(cluster: ProcCluster, prefix: str,
                                              client_on_leader: bool) -> None:
    try:
        run(_survive_leader_kill(cluster, prefix, client_on_leader))
    finally:
        for m in cluster.members:
            if not m.alive():
                cluster.start(m)
        deadline = time.monotonic() + 60
        for m in cluster.members:
            cluster.wait_up(m, timeout=max(1.0, deadline - time.monotonic()))
        cluster.leader()


async def _writes_while_disconnected(cluster: ProcCluster, prefix: str) -> None:
    """The watched member dies, writes land elsewhere before the watch reconnects (it
    reconnects only when iterated): they must all arrive, from the saved revision."""
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m is not leader)
    endpoints = [follower.endpoint] + [m.endpoint for m in cluster.members
                                       if m is not follower]
    key = prefix + "gap"
    async with Client(endpoints) as watcher, Client(leader.endpoint) as writer, \
            watcher.watch(key) as w:
        await writer.put(key, "before")
        first = await asyncio.wait_for(w.__anext__(), 30)
        assert first.value == b"before"
        cluster.kill(follower)  # the member this watch streams from
        acked = [(await writer.put(key, f"gap-{i}")).revision for i in range(10)]
        seen = [await asyncio.wait_for(w.__anext__(), 60) for _ in range(10)]
        assert [e.value for e in seen] == [b"gap-%d" % i for i in range(10)]
        assert [e.revision for e in seen] == acked
        assert w.reconnects >= 1


def test_writes_made_while_the_watch_is_disconnected_are_delivered(
        cluster: ProcCluster, prefix: str) -> None:
    try:
        run(_writes_while_disconnected(cluster, prefix))
    finally:
        for m in cluster.members:
            if not m.alive():
                cluster.start(m)
