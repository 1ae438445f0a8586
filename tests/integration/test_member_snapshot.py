"""The member registry is replicated state: a member that missed membership changes while
it was down, past log compaction, learns them from the leader's snapshot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from raftkv.wire.pb.etcdserverpb import rpc_pb2
from tests.integration.procs import cluster, etcdctl, free_ports

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("etcdctl") is None,
                                 reason="etcdctl is installed by ./dev test")]


def test_lagging_member_learns_membership_from_snapshot(tmp_path: Path) -> None:
    flags = ("--snapshot-count", "300", "--snapshot-catchup-entries", "20")
    with cluster(tmp_path, flags=flags) as c:
        lead = c.leader()
        lagger = next(m for m in c.members if m is not lead)
        c.kill(lagger)
        learner_url = f"http://127.0.0.1:{free_ports(1)[0]}"
        added = etcdctl(lead.endpoint, "member", "add", "n4", "--learner",
                        f"--peer-urls={learner_url}")
        assert added.returncode == 0, added.stderr
        for i in range(1000):  # push the log past a snapshot and its catch-up tail
            c.kv(lead).Put(rpc_pb2.PutRequest(key=b"fill/%d" % i, value=b"x"))
        c.start(lagger)
        index = c.status(lead).raftIndex  # type: ignore[union-attr]
        c.wait_applied(lagger, index)
        assert "installed snapshot" in lagger.log_path.read_text()
        listed = etcdctl(lagger.endpoint, "member", "list").stdout
        assert learner_url in listed, listed
        assert listed.count(", true") == 1  # exactly one learner, as on the leader
        assert etcdctl(lead.endpoint, "member", "list").stdout.count(learner_url) == 1
