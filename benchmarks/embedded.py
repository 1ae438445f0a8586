"""In-process Put / Get throughput through ``raftkv.embed`` (no gRPC between the caller and
its member: :class:`~raftkv.server.local_channel.LocalChannel`).

``--members 1``: one durable member in this process. ``--members 3``: three members in this
process, on one event loop (they replicate to each other over real gRPC peer streams on
loopback, every entry fsynced on each), the load issued on the leader's in-process channel.
Everything runs on one core's worth of Python, as an embedding application would.
``--members 3 --followers processes``: the leader embedded in this process, its two
followers ``raftkv serve`` processes next to it (an application embedding one member of a
3-member cluster), the load issued on the leader's in-process channel.

    .venv/bin/python benchmarks/embedded.py --members 3 --inflight 16,1024
    .venv/bin/python benchmarks/embedded.py --members 3 --followers processes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raftkv import embed
from raftkv.bench.report import percentile
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import free_ports


def _spawn_followers(stack: AsyncExitStack, root: Path, peers: dict[str, str],
                     initial: str, client_ports: list[int]) -> None:
    procs = []
    for i, (name, url) in enumerate(peers.items()):
        if i == 0:
            continue
        log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "raftkv", "serve", "--name", name, "--data-dir",
             str(root / name), "--listen-peer-urls", url, "--initial-cluster", initial,
             "--listen-client-urls", f"http://127.0.0.1:{client_ports[i]}"],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()

    def stop() -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)

    stack.callback(stop)


async def _lead_here(node: Any, endpoints: list[str]) -> None:
    """Move leadership to the embedded member (the load goes through it)."""
    from raftkv.client import Client

    while not node.is_leader:
        async with Client(endpoints) as client:
            for ep in endpoints:
                async with Client([ep]) as one:
                    st = await one.status()
                    if st.leader == st.header.member_id and st.leader != node.member_id:
                        await one.move_leader(node.member_id)
        await asyncio.sleep(0.5)
        del client


async def start(stack: AsyncExitStack, root: Path, members: int,
                followers: str = "embedded") -> list[Any]:
    if members == 1:
        return [await stack.enter_async_context(embed.start_node(root / "n1", name="n1"))]
    ports = free_ports(2 * members)
    peers = {f"n{i + 1}": f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(members)}
    initial = ",".join(f"{n}={u}" for n, u in peers.items())
    if followers == "processes":
        _spawn_followers(stack, root, peers, initial, ports[0::2])
        node = await stack.enter_async_context(embed.start_node(
            root / "n1", name="n1", listen_peer_urls=peers["n1"], initial_cluster=initial,
            listen_client_urls=f"http://127.0.0.1:{ports[0]}"))
        await _lead_here(node, [f"127.0.0.1:{p}" for p in ports[0::2]])
        return [node]
    managers = [embed.start_node(root / n, name=n, listen_peer_urls=u, initial_cluster=initial,
                                 listen_client_urls=f"http://127.0.0.1:{ports[2 * i]}",
                                 heartbeat_interval=100, election_timeout=1000)
                for i, (n, u) in enumerate(peers.items())]
    nodes = await asyncio.gather(*(m.__aenter__() for m in managers))
    for m in reversed(managers):
        stack.push_async_exit(m.__aexit__)
    return list(nodes)


async def drive(kv: Any, op: str, inflight: int, duration: float, warmup: float,
                keys: int = 10_000, value_size: int = 256) -> dict[str, float]:
    value = b"v" * value_size
    lat: list[float] = []
    errors = 0
    clock = time.monotonic
    t_measure = clock() + warmup
    t_end = t_measure + duration

    async def worker(n: int) -> None:
        nonlocal errors
        i = n
        while True:
            t0 = clock()
            if t0 >= t_end:
                return
            key = b"e/%08d" % (i % keys)
            i += inflight
            try:
                if op == "put":
                    await kv.Put(rpc_pb2.PutRequest(key=key, value=value))
                else:
                    await kv.Range(rpc_pb2.RangeRequest(key=key))
            except Exception:
                errors += 1
                continue
            if t0 >= t_measure:
                lat.append(clock() - t0)

    cpu0 = time.process_time()
    await asyncio.gather(*(worker(n) for n in range(inflight)))
    cpu = time.process_time() - cpu0
    xs = sorted(lat)
    return {"ops_per_s": round(len(xs) / duration), "p50_ms": round(percentile(xs, 50) * 1e3, 2),
            "p99_ms": round(percentile(xs, 99) * 1e3, 2), "errors": errors,
            "process_cpu_cores": round(cpu / (duration + warmup), 2)}


async def main_async(a: argparse.Namespace) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="raftkv-embedded-") as tmp:
        async with AsyncExitStack() as stack:
            nodes = await start(stack, Path(tmp), a.members, a.followers)
            leader = next(n for n in nodes if n.is_leader)
            kv = rpc_pb2_grpc.KVStub(leader.channel)  # type: ignore[no-untyped-call]
            for op in a.ops.split(","):
                for inflight in (int(x) for x in a.inflight.split(",")):
                    r = await drive(kv, op, inflight, a.duration, a.warmup)
                    row: dict[str, object] = {"members": a.members, "op": op,
                                              "followers": a.followers,
                                              "inflight": inflight, **r}
                    print(json.dumps(row), flush=True)
                    out.append(row)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, choices=(1, 3), default=3)
    p.add_argument("--followers", choices=("embedded", "processes"), default="embedded",
                   help="with 3 members: followers in this process or as raftkv serve")
    p.add_argument("--inflight", default="16,1024")
    p.add_argument("--ops", default="put,get")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    a = p.parse_args()
    rows = asyncio.run(main_async(a))
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
