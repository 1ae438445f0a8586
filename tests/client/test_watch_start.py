"""Where a watch without ``start_revision`` starts: pinned when ``client.watch()`` is
called, so every change committed after it returned is delivered -- also when the watch is
only iterated later (no ``async with``), for a client that has had no response yet, and
from ``SyncClient`` (bare ``for`` and ``with``). Against a real 3-member cluster."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from raftkv.client import Client, SyncClient
from tests.client.conftest import run
from tests.integration.procs import ProcCluster


def test_changes_between_watch_and_its_first_iteration_are_delivered(
        cluster: ProcCluster, prefix: str) -> None:
    key = prefix + "k"

    async def body() -> None:
        async with Client(cluster.endpoints) as watcher, Client(cluster.endpoints) as writer:
            await watcher.put(key, "0")  # a response: the watch starts after it
            w = watcher.watch(key)
            r1 = await writer.put(key, "1")  # before the watch exists on the server
            r2 = await writer.put(key, "2")
            got = [await asyncio.wait_for(w.__anext__(), 30) for _ in range(2)]
            assert [(e.value, e.revision) for e in got] == [
                (b"1", r1.revision), (b"2", r2.revision)]  # "0" came before watch()
            await w.cancel()
    run(body())


def test_a_client_with_no_response_yet_still_sees_its_own_later_writes(
        cluster: ProcCluster, prefix: str) -> None:
    key = prefix + "fresh"

    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            w = c.watch(key)  # nothing seen yet: a linearizable read pins the start
            r1 = await c.put(key, "1")  # waits for that read
            ev = await asyncio.wait_for(w.__anext__(), 30)
            assert (ev.value, ev.revision) == (b"1", r1.revision)
            await w.cancel()
    run(body())


def _in_thread(fn: Callable[[], None], timeout: float = 60.0) -> None:
    """Run ``fn`` in a daemon thread; fail (instead of hanging) if it does not finish."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the sync watch did not deliver the change (hung)"
    if errors:
        raise errors[0]


def test_sync_watch_bare_for_and_with(cluster: ProcCluster, prefix: str) -> None:
    key = prefix + "sync"

    def body() -> None:
        with SyncClient(cluster.endpoints) as c:
            watch = c.watch(key)  # bare: pinned here, iterated after the write
            r = c.put(key, "bare")
            for ev in watch:
                assert (ev.value, ev.revision) == (b"bare", r.revision)
                break
            assert watch._target._closed  # the bare for loop closed it
            with c.watch(key) as events:
                r = c.put(key, "with")
                for ev in events:
                    assert (ev.value, ev.revision) == (b"with", r.revision)
                    break
                assert not events._target._closed  # with: open until the block ends
            assert events._target._closed
    _in_thread(body)
