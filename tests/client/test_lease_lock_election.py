"""Lease keep-alive and loss, Lock with fencing token and guarded writes (including a holder
paused longer than its lease), and Election, against a real 3-member cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from raftkv.client import Client, Compare, Op
from raftkv.errors import (
    DeadlineExceededError,
    LeaseLostError,
    LockLostError,
    NotElectedError,
)
from tests.client.conftest import run
from tests.integration.procs import ProcCluster


async def _wait_for(pred: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_lease_is_kept_alive_past_its_ttl_then_revoked(cluster: ProcCluster,
                                                       prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            async with c.lease(ttl=2) as lease:
                fired: list[int] = []
                lease.on_lost(lambda lz: fired.append(lz.id))
                waiter = asyncio.create_task(lease.wait_lost())
                await c.put(prefix + "k", "v", lease=lease.id)
                await asyncio.sleep(5)  # 2.5 TTLs: alive only thanks to the keep-alive
                lease.check()
                assert await c.get(prefix + "k") is not None
                ttl = await lease.time_to_live(keys=True)
                assert ttl.keys == ((prefix + "k").encode(),)
                assert lease.id in await c.leases()
            # revoked on exit, with its keys: an ending, not a loss
            assert lease.revoked
            assert not lease.is_lost
            assert fired == []  # on_lost is for losses only
            assert await asyncio.wait_for(waiter, 10) is False  # waiters are released
            with pytest.raises(LeaseLostError, match="revoked"):
                lease.check()
            assert await c.get(prefix + "k") is None
            assert (await c.time_to_live(lease.id)).ttl == -1
    run(body())


def test_lost_lease_is_reported(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c, c.lease(ttl=2) as lease:
            seen: list[int] = []
            lease.on_lost(lambda lz: seen.append(lz.id))
            await c.revoke(lease.id)  # someone else revokes it
            assert await asyncio.wait_for(lease.wait_lost(), 10) is True
            assert seen == [lease.id]
            with pytest.raises(LeaseLostError):
                lease.check()
    run(body())


def test_paused_keepalive_loses_the_lease(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c, c.lease(ttl=2) as lease:
            lease.keepalive_paused = True
            await asyncio.wait_for(lease.wait_lost(), 15)
            with pytest.raises(LeaseLostError):
                lease.check()
    run(body())


def test_a_pause_longer_than_the_ttl_is_seen_by_check_before_the_keepalive_runs(
        cluster: ProcCluster, prefix: str) -> None:
    """The event loop is blocked (a GC pause, swap) for longer than the TTL: right after
    it, before the keep-alive task runs again, lock.check() must raise and
    election.is_leader must be false -- the clock says the lease may be gone."""
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            async with c.lock(prefix + "L", ttl=2) as lock:
                lock.check()
                time.sleep(lock.lease.ttl + 1.0)  # blocks the loop: nothing else runs
                with pytest.raises(LockLostError):
                    lock.check()
            election = c.election(prefix + "E", ttl=2)
            await election.campaign("me")
            leads = [election.is_leader]
            assert election.lease is not None
            time.sleep(election.lease.ttl + 1.0)
            leads.append(election.is_leader)
            assert leads == [True, False]
            with pytest.raises(NotElectedError):
                election.check()
            await election.resign()
    run(body())


def test_lock_excludes_and_fencing_tokens_grow(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as a, Client(cluster.endpoints) as b:
            order: list[str] = []
            async with a.lock(prefix + "L", ttl=5) as la:
                kv = await a.get(la.key)
                assert kv is not None
                assert la.fencing_token == kv.create_revision
                assert await la.is_held()

                async def other() -> int:
                    async with b.lock(prefix + "L", ttl=5) as lb:
                        order.append("b")
                        return lb.fencing_token
                task = asyncio.create_task(other())
                await asyncio.sleep(1.0)
                assert not task.done()  # b waits while a holds it
                order.append("a-release")
                token_a = la.fencing_token
            token_b = await asyncio.wait_for(task, 20)
            assert order == ["a-release", "b"]
            assert token_b > token_a
            with pytest.raises(DeadlineExceededError):
                async with a.lock(prefix + "L2", ttl=5), \
                        b.lock(prefix + "L2", ttl=5, timeout=1.0):
                    pass
    run(body())


def test_guarded_writes_need_the_lock(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c:
            async with c.lock(prefix + "G", ttl=5) as lock:
                await lock.put(prefix + "data", "1")
                r = await lock.txn().if_(Compare.value(prefix + "data").equal("1")).then(
                    Op.put(prefix + "data", "2")).commit()
                assert r.succeeded  # the inner txn's own compare held
                await c.delete(lock.key)  # an operator removes the lock key
                with pytest.raises(LockLostError):
                    await lock.put(prefix + "data", "3")
                with pytest.raises(LockLostError):
                    await lock.delete(prefix + "data")
            kv = await c.get(prefix + "data")
            assert kv is not None
            assert kv.value == b"2"
    run(body())


_HOLDER = textwrap.dedent("""
    import asyncio, sys
    from raftkv.client import Client
    from raftkv.errors import LockLostError

    async def main(endpoints, name, key):
        async with Client(endpoints) as c:
            lock = await c.lock(name, ttl=2).acquire()
            print("TOKEN", lock.fencing_token, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            try:
                await lock.put(key, "from-paused-holder")
                print("WRITTEN", flush=True)
            except LockLostError:
                print("REJECTED", flush=True)

    asyncio.run(main(*sys.argv[1:4]))
""")


def test_paused_lock_holder_loses_the_lock_and_its_guarded_write_is_rejected(
        cluster: ProcCluster, prefix: str) -> None:
    """A holder SIGSTOPped longer than its lease's TTL loses the lock to another client;
    when it resumes, its guarded write is rejected and the other client's data stands."""
    name, key = prefix + "P", prefix + "resource"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, cluster.endpoints, name, key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        line = holder.stdout.readline()
        assert line.startswith("TOKEN"), line
        token_a = int(line.split()[1])
        os.kill(holder.pid, signal.SIGSTOP)

        async def take_over() -> int:
            async with Client(cluster.endpoints) as c, c.lock(name, ttl=5, timeout=30) as lock:
                await lock.put(key, "from-new-holder")
                return lock.fencing_token
        token_b = run(take_over())
        assert token_b > token_a
        os.kill(holder.pid, signal.SIGCONT)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "REJECTED"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait()

    async def check() -> None:
        async with Client(cluster.endpoints) as c:
            kv = await c.get(key)
            assert kv is not None
            assert kv.value == b"from-new-holder"
    run(check())


def test_election_campaign_proclaim_resign_observe(cluster: ProcCluster,
                                                   prefix: str) -> None:
    async def body() -> None:
        name = prefix + "E"
        async with Client(cluster.endpoints) as a, Client(cluster.endpoints) as b:
            observer = a.election(name)
            assert await observer.leader() is None
            seen: list[bytes] = []

            async def observe() -> None:
                async for kv in observer.observe():
                    seen.append(kv.value)
            obs = asyncio.create_task(observe())
            ea, eb = a.election(name, ttl=5), b.election(name, ttl=5)
            await ea.campaign(b"a")
            assert ea.is_leader
            ea.check()
            leader = await eb.leader()
            assert leader is not None
            assert leader.value == b"a"
            await ea.proclaim(b"a2")
            b_wins = asyncio.create_task(eb.campaign(b"b"))
            await asyncio.sleep(0.5)
            assert not b_wins.done()
            await ea.resign()
            with pytest.raises(NotElectedError):
                await ea.proclaim(b"again")
            await asyncio.wait_for(b_wins, 20)
            assert eb.revision > 0
            await _wait_for(lambda: _true(seen[-1:] == [b"b"]))
            assert seen == [b"a", b"a2", b"b"]
            await eb.resign()
            obs.cancel()
    run(body())


async def _true(value: bool) -> bool:
    return value


_INTERRUPTED_WAITER = textwrap.dedent("""
    import sys
    from raftkv.client import SyncClient

    client = SyncClient(sys.argv[1])
    try:
        with client.lock(sys.argv[2], ttl=3):
            print("ACQUIRED", flush=True)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    sys.stdin.readline()  # stay alive: an acquire left running would take and keep it
    client.close()
""")


def test_ctrl_c_while_a_sync_client_waits_for_a_lock_gives_the_lock_up(
        cluster: ProcCluster, prefix: str) -> None:
    """SIGINT reaches a SyncClient blocked in `with client.lock(...)`: the acquire running
    on its loop thread must be cancelled (its waiter key revoked), not left to take the
    lock once the holder lets go and keep it while the process lives."""
    name = prefix + "C"

    async def scenario() -> None:
        async with Client(cluster.endpoints) as c:
            holder = await c.lock(name, ttl=5).acquire()
            waiter = subprocess.Popen(
                [sys.executable, "-c", _INTERRUPTED_WAITER, cluster.endpoints, name],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
            try:
                assert waiter.stdout is not None
                assert waiter.stdin is not None
                # its waiter key is there: it is blocked inside the Lock call
                await _wait_for(lambda: _count(c, name + "/", 2))
                waiter.send_signal(signal.SIGINT)
                line = await asyncio.to_thread(waiter.stdout.readline)
                assert line.strip() == "INTERRUPTED"
                await _wait_for(lambda: _count(c, name + "/", 1))  # its key is gone
                await holder.release()
                async with c.lock(name, ttl=5, timeout=15) as again:
                    assert again.fencing_token > holder.fencing_token
                    assert (await c.get_prefix(name + "/", count_only=True)).count == 1
                waiter.stdin.write("done\n")
                waiter.stdin.flush()
                assert await asyncio.to_thread(waiter.wait, 30) == 0
            finally:
                if waiter.poll() is None:
                    waiter.kill()
                    waiter.wait()
    run(scenario())


async def _count(c: Client, prefix: str, n: int) -> bool:
    return (await c.get_prefix(prefix, count_only=True)).count == n
