"""`raftkv bench` (python -m raftkv.bench) against a real 3-member raftkv cluster: every
workload runs briefly and reports parseable JSON with the operations it made; bad flags are
one-line errors. Behaviour only: no figure is asserted beyond "some operations happened"."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from tests.integration.procs import ProcCluster, free_ports


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    c = ProcCluster(tmp_path_factory.mktemp("bench"), 3)
    c.start_all()
    try:
        c.leader(timeout=60)
        yield c
    finally:
        c.stop_all()


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftkv.bench", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          cwd=Path(__file__).resolve().parents[2])


def run_json(c: ProcCluster, *args: str) -> dict[str, object]:
    p = bench(*args, "--endpoints", c.endpoints, "--duration", "1", "--warmup", "0.2",
              "--timeout", "20", "-w", "json")
    assert p.returncode == 0, p.stderr
    [result] = json.loads(p.stdout)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize(("args", "name"), [
    (("put",), "put"), (("get",), "get"), (("get", "--serializable"), "get-serializable"),
    (("txn",), "txn"), (("lock",), "lock"), (("watch", "--watchers", "4"), "watch")])
def test_workload_reports_json(cluster: ProcCluster, args: tuple[str, ...],
                               name: str) -> None:
    r = run_json(cluster, *args, "--concurrency", "4", "--procs", "2", "--keys", "50")
    assert r["workload"] == name
    assert isinstance(r["ops"], int)
    assert r["ops"] > 0
    assert r["error_count"] == 0, r["errors"]
    p50, p99, mx = r["p50_ms"], r["p99_ms"], r["max_ms"]
    assert isinstance(p50, float)
    assert isinstance(p99, float)
    assert isinstance(mx, float)
    assert 0 < p50 <= p99 <= mx
    assert isinstance(r["client_cpu"], float)
    assert r["client_cpu"] > 0


def test_puts_reach_the_cluster(cluster: ProcCluster) -> None:
    r = run_json(cluster, "put", "--concurrency", "2", "--procs", "1", "--keys", "5",
                 "--prefix", "written/")
    got = cluster.kv(cluster.members[0]).Range(rpc_pb2.RangeRequest(
        key=b"written/", range_end=b"written0", count_only=True), timeout=10)
    assert 0 < got.count <= 5
    assert isinstance(r["ops"], int)
    assert r["ops"] > 0


def test_lock_counts_guarded_writes(cluster: ProcCluster) -> None:
    r = run_json(cluster, "lock", "--concurrency", "3", "--procs", "1", "--keys", "2")
    counters = r["counters"]
    assert isinstance(counters, dict)
    assert counters["guarded_writes"] >= r["ops"]


def test_table_output(cluster: ProcCluster) -> None:
    p = bench("put", "--endpoints", cluster.endpoints, "--duration", "0.5", "--warmup", "0",
              "--procs", "1", "--concurrency", "2")
    assert p.returncode == 0, p.stderr
    assert "ops/s" in p.stdout
    assert "p99 ms" in p.stdout
    assert "put" in p.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (("put", "--concurrency", "0"), "--concurrency 0"),
    (("put", "--concurrency", "2", "--procs", "3"), "--procs 3"),
    (("put", "--value-size", "-1"), "--value-size -1"),
    (("put", "--duration", "0"), "--duration 0"),
    (("put", "--concurrency", "many"), "invalid int value: 'many'"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("put", "--endpoints", "localhost"), "--endpoints 'localhost'"),
    (("txn", "--serializable"), "--serializable"),
])
def test_bad_flags_are_one_line_errors(args: tuple[str, ...], fragment: str) -> None:
    p = bench(*args, timeout=60)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert fragment in lines[0]
    assert "Traceback" not in p.stderr


def test_unreachable_endpoint_is_one_line() -> None:
    [port] = free_ports(1)
    p = bench("put", "--endpoints", f"127.0.0.1:{port}", "--timeout", "1", timeout=60)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert f"127.0.0.1:{port} does not answer" in lines[0]
