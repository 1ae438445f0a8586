"""The same client against a real etcd (Debian's etcd 3.4): KV, Txn, Lock, Lease, Watch.
Skipped when the ``etcd`` binary is missing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.client import Client, Compare, Op
from raftkv.errors import LockLostError
from tests.client.conftest import run
from tests.integration.procs import free_ports

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = Path(tmp_path_factory.mktemp("etcd"))
    client_port, peer_port = free_ports(2)
    client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    log = open(root / "etcd.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        ["etcd", "--name", "e1", "--data-dir", str(root / "data"),
         "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"e1={peer_url}"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    endpoint = f"127.0.0.1:{client_port}"
    try:
        async def ready() -> None:
            deadline = time.monotonic() + 30
            async with Client(endpoint, timeout=2) as c:
                while True:
                    try:
                        await c.get("probe")
                        return
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
        run(ready())
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_kv_and_txn_against_etcd(etcd: str) -> None:
    async def body() -> None:
        async with Client(etcd) as c:
            p = await c.put("/e/a", "1")
            kv = await c.get("/e/a")
            assert kv is not None
            assert (kv.value, kv.create_revision, kv.version) == (b"1", p.revision, 1)
            assert c._dedup is False  # etcd does not de-duplicate: writes are not retried
            r = await c.txn().if_(Compare.value("/e/a").equal("1")).then(
                Op.put("/e/a", "2"), Op.get("/e/a")).otherwise(Op.get("/e/a")).commit()
            assert r.succeeded
            assert r.responses[1].kvs[0].value == b"2"  # type: ignore[union-attr]
            await c.put("/e/b", "3")
            assert (await c.get_prefix("/e/")).count == 2
            assert (await c.delete_prefix("/e/")).deleted == 2
    run(body())


def test_lock_lease_and_watch_against_etcd(etcd: str) -> None:
    async def body() -> None:
        async with Client(etcd) as c:
            async with c.lock("/e/lock", ttl=5) as lock:
                assert lock.fencing_token > 0
                await lock.put("/e/guarded", "ok")
                await c.delete(lock.key)
                with pytest.raises(LockLostError):
                    await lock.put("/e/guarded", "late")
            async with c.lease(ttl=5) as lease:
                await c.put("/e/leased", "x", lease=lease.id)
                assert (await c.time_to_live(lease.id)).ttl > 0
            assert await c.get("/e/leased") is None
            start = (await c.put("/e/w", "1")).revision
            await c.put("/e/w", "2")
            got = []
            async with c.watch("/e/w", start_revision=start) as w:
                async for ev in w:
                    got.append(ev.value)
                    if len(got) == 2:
                        break
            assert got == [b"1", b"2"]
    run(body())
