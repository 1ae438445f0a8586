"""The etcdctl-like ``raftkv`` commands against a real 3-member cluster (real processes).

Each command runs as ``python -m raftkv ...`` in a subprocess, as a user would run it; its
output is checked, and where etcdctl exists, what one wrote the other reads.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.procs import ProcCluster, cluster, etcdctl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    with cluster(tmp_path_factory.mktemp("cli-cluster")) as pc:
        pc.leader()
        yield pc


def rk(c: ProcCluster, *args: str, stdin: str | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RAFTKV_ENDPOINTS=c.endpoints)
    return subprocess.run([sys.executable, "-m", "raftkv", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env,
                          check=False)


def ok(c: ProcCluster, *args: str, stdin: str | None = None) -> str:
    r = rk(c, *args, stdin=stdin)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def test_put_get_del_in_every_format(c: ProcCluster) -> None:
    assert ok(c, "put", "cli/a", "one") == "OK\n"
    assert ok(c, "put", "cli/b", stdin="two from stdin") == "OK\n"
    assert ok(c, "get", "cli/", "--prefix") == "cli/a\none\ncli/b\ntwo from stdin\n"
    assert ok(c, "get", "cli/a", "--print-value-only") == "one\n"
    assert ok(c, "get", "cli/", "--prefix", "--keys-only") == "cli/a\n\ncli/b\n\n".replace(
        "\n\n", "\n")
    doc = json.loads(ok(c, "get", "cli/a", "-w", "json"))
    assert base64.b64decode(doc["kvs"][0]["value"]) == b"one"
    assert doc["header"]["revision"] >= doc["kvs"][0]["mod_revision"]
    assert "| cli/a | one" in ok(c, "get", "cli/", "--prefix", "-w", "table")
    assert ok(c, "get", "cli/", "--prefix", "--count-only") == "2\n"
    assert ok(c, "del", "cli/", "--prefix", "--prev-kv") == \
        "2\ncli/a\none\ncli/b\ntwo from stdin\n"
    assert ok(c, "get", "cli/", "--prefix") == ""


def test_values_that_start_with_a_dash_after_double_dash(c: ProcCluster) -> None:
    assert ok(c, "put", "dash", "--", "-v") == "OK\n"
    assert ok(c, "get", "dash", "--print-value-only") == "-v\n"


def test_etcdctl_reads_what_raftkv_wrote_and_back(c: ProcCluster) -> None:
    if shutil.which("etcdctl") is None:
        pytest.skip("etcdctl not installed (apt-get install etcd-client)")
    ok(c, "put", "both", "from raftkv")
    assert etcdctl(c.endpoints, "get", "both", "--print-value-only").stdout == "from raftkv\n"
    etcdctl(c.endpoints, "put", "both", "from etcdctl")
    assert ok(c, "get", "both", "--print-value-only") == "from etcdctl\n"


def test_txn_from_stdin_both_branches(c: ProcCluster) -> None:
    ok(c, "put", "txn/k", "v1")
    script = 'value("txn/k") = "v1"\n\nput txn/k v2\n\nget txn/k\n'
    assert ok(c, "txn", stdin=script) == "SUCCESS\n\nOK\n"
    assert ok(c, "txn", stdin=script) == "FAILURE\n\ntxn/k\nv2\n"
    r = rk(c, "txn", stdin='colour("k") = "x"\n\n\n')
    assert r.returncode == 2
    assert r.stderr.startswith("raftkv: error: txn: unknown compare target 'colour'")


def test_lease_lifecycle_and_attached_key(c: ProcCluster) -> None:
    out = ok(c, "lease", "grant", "60")
    lease = out.split()[1]
    assert out == f"lease {lease} granted with TTL(60s)\n"
    ok(c, "put", "leased", "x", "--lease", lease)
    ttl = ok(c, "lease", "timetolive", lease, "--keys")
    assert ttl.startswith(f"lease {lease} granted with TTL(60s), remaining(")
    assert "attached keys([leased])" in ttl
    assert ok(c, "lease", "keep-alive", lease, "--once") == \
        f"lease {lease} keepalived with TTL(60)\n"
    assert lease in ok(c, "lease", "list")
    assert ok(c, "lease", "revoke", lease) == f"lease {lease} revoked\n"
    assert ok(c, "get", "leased") == ""


def test_lock_prints_a_growing_fencing_token_and_runs_the_command(c: ProcCluster) -> None:
    tokens = []
    for _ in range(2):
        out = ok(c, "lock", "cli-lock", "--", sys.executable, "-c",
                 "import os; print('child', os.environ['RAFTKV_FENCING_TOKEN'])")
        key, token_line, child = out.splitlines()
        assert key.startswith("cli-lock/")
        token = int(token_line.removeprefix("fencing token: "))
        assert child == f"child {token}"
        tokens.append(token)
    assert tokens[1] > tokens[0]
    r = rk(c, "lock", "cli-lock", "--", sys.executable, "-c", "raise SystemExit(3)")
    assert r.returncode == 3


def test_lock_excludes_a_second_holder_until_the_first_exits(c: ProcCluster) -> None:
    env = dict(os.environ, RAFTKV_ENDPOINTS=c.endpoints)
    holder = subprocess.Popen([sys.executable, "-m", "raftkv", "lock", "excl"], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().startswith("excl/")
        r = rk(c, "lock", "excl", "--wait-timeout", "2s", "--", "true")
        assert r.returncode == 1  # could not take it while held
        assert r.stderr.startswith("raftkv: error: ")
    finally:
        holder.send_signal(signal.SIGINT)
        holder.wait(timeout=30)
    assert rk(c, "lock", "excl", "--", "true").returncode == 0


def test_watch_prints_history_and_live_events(c: ProcCluster) -> None:
    rev = json.loads(ok(c, "put", "wt/a", "1", "-w", "json"))["header"]["revision"]
    ok(c, "del", "wt/a")
    out = ok(c, "watch", "wt/", "--prefix", "--rev", str(rev), "--max-events", "2")
    assert out == "PUT\nwt/a\n1\nDELETE\nwt/a\n"


def test_status_member_and_endpoint_tables(c: ProcCluster) -> None:
    status = ok(c, "status")
    assert status.count("leader") == 1
    assert status.count("follower") == 2
    rows = json.loads(ok(c, "status", "-w", "json"))
    assert sorted(r["name"] for r in rows) == ["n1", "n2", "n3"]
    assert all(r["applied"] > 0 and r["db_size"] > 0 for r in rows)
    leader = next(r for r in rows if r["role"] == "leader")
    followers = [r for r in rows if r["role"] == "follower"]
    assert leader["last_contact_ms"] is None  # the leader's own row: it hears itself
    assert all(0 <= r["last_contact_ms"] < 5000 for r in followers)  # the leader hears them
    members = ok(c, "member", "list").splitlines()
    assert len(members) == 3
    assert all(", started, n" in line for line in members)
    health = ok(c, "endpoint", "health", "--cluster").splitlines()
    assert len(health) == 3
    assert all(" is healthy: " in h for h in health)
    hashes = {line.split(", ")[1] for line in ok(c, "endpoint", "hashkv", "--cluster")
              .splitlines()}
    assert len(hashes) == 1


def test_snapshot_save_then_restore_into_a_new_cluster(c: ProcCluster, tmp_path: Path) -> None:
    for i in range(20):
        ok(c, "put", f"snap/{i:02d}", f"value {i}")
    snap = tmp_path / "backup.db"
    assert ok(c, "snapshot", "save", str(snap)).startswith(f"Snapshot saved at {snap}")
    digest, revision, keys, _ = ok(c, "snapshot", "status", str(snap)).strip().split(", ")
    assert int(keys) >= 20
    assert int(revision) > 0
    bad = tmp_path / "bad.db"
    bad.write_bytes(snap.read_bytes()[:-1] + b"x")
    r = rk(c, "snapshot", "status", str(bad))
    assert r.returncode == 1
    assert "SHA-256 does not match" in r.stderr
    peer = f"http://127.0.0.1:{c.members[0].peer_port + 1000}"
    restored = tmp_path / "r1"
    ok(c, "snapshot", "restore", str(snap), "--name", "r1", "--data-dir", str(restored),
       "--initial-cluster", f"r1={peer}", "--initial-advertise-peer-urls", peer)
    from tests.integration.procs import free_ports

    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftkv", "serve", "--name", "r1", "--data-dir", str(restored),
         "--listen-client-urls", f"http://127.0.0.1:{port}", "--listen-peer-urls", peer,
         "--initial-cluster", f"r1={peer}"], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            r = rk(c, "get", "snap/", "--prefix", "--count-only", "--endpoints",
                   f"127.0.0.1:{port}")
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.stdout == "20\n", r.stderr
        hashes = rk(c, "endpoint", "hashkv", "--endpoints", f"127.0.0.1:{port}")
        assert hashes.stdout.strip().endswith(f", {digest}")  # the same key space
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_errors_are_one_line_with_a_nonzero_status(c: ProcCluster) -> None:
    cases = [
        (("put", "", "x"), 1, "raftkv: error: etcdserver: key is not provided"),
        (("get", "x", "--rev", "99999999"), 1,
         "raftkv: error: etcdserver: mvcc: required revision is a future revision"),
        (("lease", "revoke", "zz"), 2, "raftkv: error: ID='zz' is not a lease id"),
        (("get",), 2, "raftkv: error: the following arguments are required: KEY"),
        (("get", "x", "-w", "yaml"), 2, "raftkv: error: argument -w/--write-out"),
        (("get", "x", "--endpoints", "127.0.0.1:1", "--dial-timeout", "1s"), 1,
         "raftkv: error: no endpoint of --endpoints=127.0.0.1:1 answered within "
         "--dial-timeout=1s"),
        (("watch", "x", "--endpoints", "127.0.0.1:1", "--dial-timeout", "1s"), 1,
         "raftkv: error: no endpoint"),
        (("lease", "keep-alive", "1234", "--once", "--endpoints", "127.0.0.1:1"), 1,
         "raftkv: error: no endpoint"),
        (("put", "k", "v", "--", "extra", "words"), 2,
         "raftkv: error: unrecognized arguments: -- extra words"),
    ]
    for args, code, prefix in cases:
        r = rk(c, *args)
        assert r.returncode == code, (args, r.stderr)
        assert r.stderr.startswith(prefix), (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_every_command_has_help_with_an_example() -> None:
    commands = [["get"], ["put"], ["del"], ["txn"], ["watch"], ["compaction"], ["lock"],
                ["elect"], ["status"], ["move-leader"], ["defrag"], ["alarm"],
                ["lease", "grant"], ["lease", "keep-alive"], ["member", "list"],
                ["member", "add"], ["endpoint", "health"], ["snapshot", "save"],
                ["snapshot", "restore"], ["cluster", "up"], ["serve"], ["bench"]]
    for cmd in commands:
        r = subprocess.run([sys.executable, "-m", "raftkv", *cmd, "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, (cmd, r.stderr)
        assert "example" in r.stdout.lower(), cmd
