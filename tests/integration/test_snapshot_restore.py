"""Disaster recovery: `etcdctl snapshot save` from one cluster, `raftkv snapshot restore`
into the data directories of a new 3-member cluster, and all the data is there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from tests.integration.procs import ProcCluster, cluster, etcdctl

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("etcdctl") is None,
                                 reason="etcdctl is installed by ./dev test")]


def restore(snap: Path, c: ProcCluster, *extra: str) -> list[subprocess.CompletedProcess[str]]:
    out = []
    for m in c.members:
        out.append(subprocess.run(
            [sys.executable, "-m", "raftkv", "snapshot", "restore", str(snap),
             "--name", m.name, "--data-dir", str(m.data_dir),
             "--initial-cluster", c.initial_cluster,
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{m.peer_port}", *extra],
            capture_output=True, text=True, timeout=60, check=False))
    return out


def test_save_then_restore_into_a_new_cluster(tmp_path: Path) -> None:
    snap = tmp_path / "snap.db"
    with cluster(tmp_path / "old") as old:
        lead = old.leader()
        for i in range(200):
            old.kv(lead).Put(rpc_pb2.PutRequest(key=b"k%03d" % i, value=b"v%d" % i))
        old.kv(lead).DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"k000"))
        before = old.kv(lead).Range(rpc_pb2.RangeRequest(key=b"k", range_end=b"l"))
        saved = etcdctl(lead.endpoint, "snapshot", "save", str(snap))
        assert saved.returncode == 0, saved.stderr
    new = ProcCluster(tmp_path / "new", 3)
    for p in restore(snap, new):
        assert p.returncode == 0, p.stderr
        assert "restored" in p.stdout
    new.start_all()
    try:
        lead = new.leader()
        after = new.kv(lead).Range(rpc_pb2.RangeRequest(key=b"k", range_end=b"l"))
        assert [(kv.key, kv.value, kv.mod_revision) for kv in after.kvs] == \
            [(kv.key, kv.value, kv.mod_revision) for kv in before.kvs]
        assert after.count == 199
        assert after.header.revision == before.header.revision
        for m in new.members:  # every member holds it, and the new cluster takes writes
            new.wait_up(m)
        new.kv(new.members[1]).Put(rpc_pb2.PutRequest(key=b"new", value=b"write"))
        out = etcdctl(new.endpoints, "get", "new", "--print-value-only").stdout.strip()
        assert out == "write"
    finally:
        new.stop_all()


def test_restore_refuses_bad_input(tmp_path: Path) -> None:
    new = ProcCluster(tmp_path / "c", 3)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\0" * 1024)
    for p in restore(garbage, new):
        assert p.returncode != 0
        assert p.stderr.strip().startswith("raftkv: error: ")
        assert "SHA-256" in p.stderr or "not a raftkv snapshot" in p.stderr
        assert "Traceback" not in p.stderr
    missing = restore(tmp_path / "nope.db", new)[0]
    assert missing.returncode != 0
    assert "cannot read snapshot file" in missing.stderr
