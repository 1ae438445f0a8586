"""The Python gRPC wall: how fast can a ``grpc.aio`` server answer Put if it does nothing?

Starts N processes, each a ``grpc.aio`` server whose ``etcdserverpb.KV/Put`` returns an
empty ``PutResponse`` at once (no Raft, no storage, no state), and drives them with the
same client as every other figure (``raftkv bench put``, requests spread over the
endpoints). With N = 3 this is the most any 3-member Python cluster on this machine could
answer, whatever its engine does: the ceiling raftkv's figures should be read against.

    .venv/bin/python benchmarks/grpc_ceiling.py --servers 1,3 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.procs import free_ports


def serve(port: int, uvloop: bool) -> None:
    import grpc

    from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

    class NoOpKV(rpc_pb2_grpc.KVServicer):
        async def Put(self, request: rpc_pb2.PutRequest, context: object) -> rpc_pb2.PutResponse:
            return rpc_pb2.PutResponse()

        async def Range(self, request: rpc_pb2.RangeRequest,
                        context: object) -> rpc_pb2.RangeResponse:
            return rpc_pb2.RangeResponse()

    async def main() -> None:
        server = grpc.aio.server()
        rpc_pb2_grpc.add_KVServicer_to_server(NoOpKV(), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    if uvloop:
        import uvloop as uv
        uv.install()
    asyncio.run(main())


def measure(servers: int, concurrency: int, duration: float, uvloop: bool) -> dict[str, object]:
    ports = free_ports(servers)
    procs = [subprocess.Popen([sys.executable, __file__, "--serve", str(p)]
                              + (["--uvloop"] if uvloop else [])) for p in ports]
    try:
        time.sleep(1.5)
        endpoints = ",".join(f"127.0.0.1:{p}" for p in ports)
        out = subprocess.run(
            [sys.executable, "-m", "raftkv", "bench", "put", "--endpoints", endpoints,
             "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "1",
             "--no-preload", "--no-progress", "-w", "json"],
            capture_output=True, text=True, check=True, timeout=duration + 120)
        row = json.loads(out.stdout)[0]
        return {"servers": servers, "uvloop": uvloop, "concurrency": concurrency,
                "ops_per_s": round(row["ops_per_s"]), "p50_ms": round(row["p50_ms"], 1),
                "p99_ms": round(row["p99_ms"], 1)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="1,3", help="comma-separated server counts")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--uvloop", action="store_true", help="servers on uvloop")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        serve(a.serve, a.uvloop)
        return 0
    for n in (int(x) for x in a.servers.split(",")):
        print(json.dumps(measure(n, a.concurrency, a.duration, a.uvloop)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
