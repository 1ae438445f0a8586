"""Memory and scale figures of a 3-member raftkv cluster holding many keys.

For ``--keys N`` (256-byte values, written 100 per txn through the leader):

* resident memory (VmRSS) of each member before and after the load;
* restart of a member holding the keys (SIGTERM, start): time until it answers Status and
  until it has applied the leader's index;
* a follower that was down during the whole load: the leader's log was compacted past it
  (a snapshot every 40% of the load, 500 entries kept behind it), so it catches up through a
  Raft snapshot; the snapshot's size and the time from start to caught up.

Data under a temporary directory in /tmp, removed afterwards; every member stopped by PID.

    .venv/bin/python benchmarks/scale.py --keys 100000 --keys 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clusters import rss_kib
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.procs import Member, ProcCluster

PER_TXN = 100
FLAGS = ("--heartbeat-interval", "100", "--election-timeout", "1000",
         "--snapshot-catchup-entries", "500",
         "--quota-backend-bytes", str(8 * 1024**3))


async def load(endpoint: str, keys: int, value_size: int, inflight: int = 8) -> None:
    """Write ``keys`` keys ``scale/%08d`` through ``endpoint``, ``PER_TXN`` per txn."""
    batches = iter(range(0, keys, PER_TXN))
    timeouts: list[str] = []
    async with grpc.aio.insecure_channel(endpoint) as ch:
        kv = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]

        async def worker() -> None:
            for lo in batches:
                ops = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(
                    key=b"scale/%08d" % i, value=os.urandom(value_size)))  # incompressible
                    for i in range(lo, min(keys, lo + PER_TXN))]
                for attempt in range(10):  # idempotent: the same puts again
                    try:
                        await kv.Txn(rpc_pb2.TxnRequest(success=ops), timeout=120)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 9:
                            raise
                        timeouts.append(exc.details() or "")

        await asyncio.gather(*(worker() for _ in range(inflight)))
    if timeouts:
        print(f"  {len(timeouts)} txns retried after UNAVAILABLE ({timeouts[0]})", flush=True)


def applied(c: ProcCluster, m: Member) -> int:
    st = c.status(m, timeout=5)
    return st.raftAppliedIndex if st is not None else -1


def rss_mib(c: ProcCluster) -> dict[str, float]:
    return {m.name: round(rss_kib(m.proc.pid) / 1024, 1) for m in c.members
            if m.proc is not None and m.alive()}


def snapshot_installs(m: Member) -> list[tuple[int, int]]:
    text = m.log_path.read_text(errors="replace")
    return [(int(a), int(b)) for a, b in
            re.findall(r"installed snapshot at (\d+) from the leader \((\d+) bytes\)", text)]


def run_one(keys: int, value_size: int) -> dict[str, object]:
    out: dict[str, object] = {"keys": keys, "value_size": value_size}
    with tempfile.TemporaryDirectory(prefix="raftkv-scale-") as tmp:
        # a snapshot every 40% of the load: the one that was down must get one
        every = str(max(100, keys // PER_TXN * 2 // 5))
        c = ProcCluster(Path(tmp), 3, flags=(*FLAGS, "--snapshot-count", every))
        c.start_all()
        try:
            lead = c.leader(timeout=60)
            behind, restarted = [m for m in c.members if m is not lead]
            out["rss_mib_empty"] = rss_mib(c)
            c.kill(behind, sig=15)
            t0 = time.monotonic()
            asyncio.run(load(lead.endpoint, keys, value_size))
            out["load_s"] = round(time.monotonic() - t0, 1)
            index = applied(c, lead)
            c.wait_applied(restarted, index, timeout=600)
            out["rss_mib_loaded"] = rss_mib(c)
            st = c.status(lead, timeout=5)
            out["db_mib"] = round((st.dbSize if st else 0) / 2**20, 1)
            print(f"{keys} keys loaded in {out['load_s']} s; RSS {out['rss_mib_loaded']}",
                  flush=True)

            c.kill(restarted, sig=15)
            t0 = time.monotonic()
            c.start(restarted)
            c.wait_up(restarted, timeout=600)
            out["restart_answering_s"] = round(time.monotonic() - t0, 2)
            c.wait_applied(restarted, index, timeout=600)
            out["restart_caught_up_s"] = round(time.monotonic() - t0, 2)
            out["rss_mib_after_restart"] = round(rss_kib(restarted.proc.pid) / 1024, 1)  # type: ignore[union-attr]

            t0 = time.monotonic()
            c.start(behind)
            c.wait_up(behind, timeout=600)
            c.wait_applied(behind, index, timeout=1200)
            out["behind_caught_up_s"] = round(time.monotonic() - t0, 2)
            installs = snapshot_installs(behind)
            out["snapshot_installs"] = installs
            out["snapshot_mib"] = round(installs[-1][1] / 2**20, 1) if installs else None
            out["rss_mib_after_install"] = round(rss_kib(behind.proc.pid) / 1024, 1)  # type: ignore[union-attr]
        finally:
            c.stop_all()
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, action="append", help="repeatable (default 100000)")
    p.add_argument("--value-size", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    a = p.parse_args()
    results = [run_one(k, a.value_size) for k in (a.keys or [100_000])]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
