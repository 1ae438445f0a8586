"""STM: concurrent transfers between accounts under contention keep the total, against a
real 3-member cluster."""

from __future__ import annotations

import asyncio
import random

import pytest

from raftkv.client import STM, Client
from raftkv.client.stm import Isolation
from raftkv.errors import ConflictError
from tests.client.conftest import run
from tests.integration.procs import ProcCluster

ACCOUNTS = 5
START = 100


async def _transfers(cluster: ProcCluster, prefix: str, isolation: Isolation,
                     workers: int, per_worker: int) -> tuple[int, list[int]]:
    keys = [f"{prefix}acct/{i}" for i in range(ACCOUNTS)]
    clients = [Client(cluster.endpoints) for _ in range(3)]
    try:
        for k in keys:
            await clients[0].put(k, str(START))
        attempts = [0]

        async def worker(n: int) -> None:
            rng = random.Random(n)
            c = clients[n % len(clients)]
            for _ in range(per_worker):
                src, dst = rng.sample(keys, 2)
                amount = rng.randint(1, 30)

                async def transfer(stm: STM, src: str = src, dst: str = dst,
                                   amount: int = amount) -> None:
                    attempts[0] += 1
                    a = int(await stm.get(src) or b"0")
                    b = int(await stm.get(dst) or b"0")
                    if a < amount:
                        return  # no overdraft: nothing written
                    stm.put(src, str(a - amount))
                    stm.put(dst, str(b + amount))
                await c.stm(transfer, isolation=isolation, retries=200)

        await asyncio.gather(*(worker(n) for n in range(workers)))
        balances = [int((await clients[0].get(k)).value) for k in keys]  # type: ignore[union-attr]
        return attempts[0], balances
    finally:
        for c in clients:
            await c.close()


@pytest.mark.parametrize("isolation", ["serializable", "repeatable_read"])
def test_concurrent_transfers_keep_the_total(cluster: ProcCluster, prefix: str,
                                             isolation: Isolation) -> None:
    workers, per_worker = 8, 12
    attempts, balances = run(_transfers(cluster, prefix, isolation, workers, per_worker))
    assert sum(balances) == ACCOUNTS * START, balances
    assert all(b >= 0 for b in balances), balances
    # 8 workers on 5 accounts do conflict: some functions ran more than once
    assert attempts > workers * per_worker


def test_stm_gives_up_with_conflict_error(cluster: ProcCluster, prefix: str) -> None:
    async def body() -> None:
        async with Client(cluster.endpoints) as c, Client(cluster.endpoints) as other:
            async def always_conflicts(stm: STM) -> None:
                await stm.get(prefix + "hot")
                await other.put(prefix + "hot", "changed")  # a concurrent writer
                stm.put(prefix + "hot", "mine")
            with pytest.raises(ConflictError):
                await c.stm(always_conflicts, retries=3)
            kv = await c.get(prefix + "hot")
            assert kv is not None
            assert kv.value == b"changed"
    run(body())
