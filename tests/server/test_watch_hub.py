"""The watch hub against a real (in-memory) state machine: history then live events with no
gap or duplicate, slow watchers caught up from history with a bounded queue, ordered
``created`` acks, ids, cancel, filters, compaction, progress (etcd 3.4 semantics)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from raftkv.server import watch_hub
from raftkv.server.watch_hub import (
    MSG_DUPLICATE_ID,
    MSG_EMPTY_RANGE,
    Out,
    WatchHub,
    WatchSpec,
    WatchStream,
)
from raftkv.state.codec import encode_request
from raftkv.state.commands import (
    Command,
    Compact,
    DeleteRange,
    EventType,
    KeyValue,
    Put,
    Request,
    Txn,
)
from tests.state.helpers import Node


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def apply(node: Node, hub: WatchHub, op: Command) -> None:
    """Apply ``op`` and hand its events to the hub, as the driver does."""
    node.index += 1
    applied = node.sm.apply(node.index, encode_request(Request(0, 0, op)))
    if applied.events:
        hub.on_events(applied.events)
    hub.on_apply(node.index)


async def drain(stream: WatchStream) -> list[Out]:
    """Everything queued once the hub's tasks have run."""
    for _ in range(20):
        await asyncio.sleep(0)
    out: list[Out] = []
    while not stream.queue.empty():
        item = stream.queue.get_nowait()
        assert item is not None
        out.append(item)
        for _ in range(5):
            await asyncio.sleep(0)
    return out


def revs(outs: list[Out], wid: int = 0) -> list[int]:
    return [e.kv.mod_revision for o in outs if o.watch_id == wid for e in o.events]


def test_history_then_live_without_gap_or_duplicate() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm, chunk_revs=3)
        for i in range(10):
            apply(node, hub, Put(b"k", b"%d" % i))  # revisions 2..11
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k", start_revision=4))
        apply(node, hub, Put(b"k", b"live"))  # 12, while the watcher is still unsynced
        outs = await drain(stream)
        assert outs[0] == Out(0, revision=11, created=True)
        for i in range(5):
            apply(node, hub, Put(b"k", b"more%d" % i))  # 13..17, live
        outs += await drain(stream)
        assert revs(outs) == list(range(4, 18))
        stream.close()
    run(main())


def test_slow_watcher_is_bounded_and_caught_up_from_history() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k"))
        for i in range(3 * watch_hub.QUEUE_SIZE):  # nobody reads meanwhile
            apply(node, hub, Put(b"k", b"%d" % i))
        assert stream.queue.qsize() <= watch_hub.QUEUE_SIZE
        assert not stream.watchers[0].synced
        got: list[Out] = []
        while len(revs(got)) < 3 * watch_hub.QUEUE_SIZE:
            item = await stream.queue.get()
            assert item is not None
            got.append(item)
            if len(got) % 50 == 0:
                apply(node, hub, Put(b"other", b"x"))  # writes continue while catching up
        assert revs(got) == [r for r in range(2, node.sm.revision + 1)
                             if r not in _other_revs(node)]
        assert stream.watchers[0].synced
    run(main())


def _other_revs(node: Node) -> set[int]:
    return {e.kv.mod_revision for e in node.sm.events_between(0, 10**9, b"other", b"")}


def test_ids_created_order_duplicates_empty_range_and_cancel() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"a"))
        await stream.create(WatchSpec(b"b", watch_id=1))
        await stream.create(WatchSpec(b"c"))  # 0 and 1 taken: gets 2
        await stream.create(WatchSpec(b"d", watch_id=2))
        await stream.create(WatchSpec(b"z", b"a"))
        outs = await drain(stream)
        assert [(o.watch_id, o.created, o.canceled, o.cancel_reason) for o in outs] == [
            (0, True, False, ""), (1, True, False, ""), (2, True, False, ""),
            (-1, True, True, MSG_DUPLICATE_ID), (-1, True, True, MSG_EMPTY_RANGE)]
        await stream.cancel(1)
        await stream.cancel(99)  # unknown: ignored
        apply(node, hub, Put(b"b", b"1"))
        apply(node, hub, Put(b"a", b"1"))
        outs = await drain(stream)
        assert outs[0] == Out(1, canceled=True)
        assert [(o.watch_id, revs([o], o.watch_id)) for o in outs[1:]] == [(0, [3])]
    run(main())


def test_filters_prefix_and_prev_kv_flag() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"p/", b"p0", no_put=True, prev_kv=True))
        await stream.create(WatchSpec(b"p/", b"p0", no_delete=True))
        await drain(stream)
        apply(node, hub, Put(b"p/1", b"a"))
        apply(node, hub, Put(b"q", b"a"))
        apply(node, hub, DeleteRange(b"p/", b"p0"))
        outs = await drain(stream)
        assert [(o.watch_id, [e.type for e in o.events], o.prev_kv) for o in outs] == [
            (1, [EventType.PUT], False), (0, [EventType.DELETE], True)]
        assert outs[1].events[0].prev_kv is not None
    run(main())


def test_live_put_events_get_prev_kv_only_for_watchers_that_asked() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        apply(node, hub, Put(b"k", b"old"))
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k", prev_kv=True))
        await stream.create(WatchSpec(b"k"))
        await drain(stream)
        apply(node, hub, Put(b"k", b"new"))
        apply(node, hub, Txn(success=(Put(b"k", b"newer"), Put(b"x", b"1"))))
        outs = await drain(stream)
        prevs = {(o.watch_id, e.kv.value): e.prev_kv for o in outs for e in o.events}
        assert prevs[0, b"new"] == KeyValue(b"k", 2, 2, 1, b"old")
        assert prevs[0, b"newer"] == KeyValue(b"k", 2, 3, 2, b"new")
        assert prevs[1, b"new"] is None
        assert prevs[1, b"newer"] is None
    run(main())


def test_compacted_start_revision_is_cancelled_with_the_compact_revision() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        for i in range(5):
            apply(node, hub, Put(b"k", b"%d" % i))
        apply(node, hub, Compact(4))
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k", start_revision=3))
        await stream.create(WatchSpec(b"k", start_revision=4))
        outs = await drain(stream)
        assert outs[0].created
        assert outs[1].created
        assert Out(0, canceled=True, compact_revision=4) in outs
        assert revs(outs, 1) == [4, 5, 6]
        assert 0 not in stream.watchers
    run(main())


def test_progress_request_and_progress_notify() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm, progress_interval_s=0.05)
        apply(node, hub, Put(b"k", b"1"))
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k", progress_notify=True))
        await stream.create(WatchSpec(b"j"))
        await stream.progress()
        outs = await drain(stream)
        assert outs[2] == Out(-1, revision=2)
        await asyncio.sleep(0.12)
        outs = await drain(stream)
        assert outs
        assert all(o == Out(0, revision=2) for o in outs)
        stream.close()
    run(main())


def test_snapshot_jump_sends_synced_watchers_back_to_history() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k"))
        await drain(stream)
        # entries applied without their events reaching the hub (a snapshot install)
        for i in range(3):
            node.index += 1
            node.sm.apply(node.index, encode_request(Request(0, 0, Put(b"k", b"%d" % i))))
        hub.on_apply(node.index)
        apply(node, hub, Put(b"k", b"after"))
        outs = await drain(stream)
        assert revs(outs) == [2, 3, 4, 5]
    run(main())


def test_close_ends_the_stream_and_drops_watchers() -> None:
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k"))
        stream.close("etcdserver: no leader")
        assert await stream.queue.get() is None
        assert stream.error == "etcdserver: no leader"
        apply(node, hub, Put(b"k", b"1"))
        assert stream.queue.empty()
    run(main())


def test_events_delivered_late_by_the_driver_are_not_duplicated() -> None:
    # The driver applies on its I/O thread and hands the events to the hub afterwards, so
    # the store revision can be ahead of the hub: history already covers those revisions.
    async def main() -> None:
        node = Node()
        hub = WatchHub(node.sm)
        held = []
        for i in range(3):
            node.index += 1
            held.append(node.sm.apply(node.index,
                                      encode_request(Request(0, 0, Put(b"k", b"%d" % i)))))
        stream = hub.open_stream()
        await stream.create(WatchSpec(b"k", start_revision=2))
        await stream.create(WatchSpec(b"k", start_revision=6))  # future: synced, waits
        outs = await drain(stream)
        for a in held:
            hub.on_events(a.events)
        hub.on_apply(node.index)
        for i in range(3):
            apply(node, hub, Put(b"k", b"x%d" % i))  # 5, 6, 7
        outs += await drain(stream)
        assert revs(outs, 0) == [2, 3, 4, 5, 6, 7]
        assert revs(outs, 1) == [6, 7]
    run(main())
