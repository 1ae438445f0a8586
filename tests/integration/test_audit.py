"""--audit-log: one JSON line per refused request and per auth change; no secret in it, in
the member's log at debug level, or anywhere in its data dir."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.procs import ProcCluster, etcdctl

ROOT_PW, ALICE_PW = "Root-S3cret-pw", "Alice-S3cret-pw"


def test_audit_lines_and_no_secret_anywhere(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    c = ProcCluster(tmp_path, 1, flags=("--bcrypt-cost", "4", "--audit-log", str(audit),
                                        "--log-level", "debug"))
    c.start_all()
    try:
        c.leader()
        ep = c.endpoints
        root = f"--user=root:{ROOT_PW}"
        assert etcdctl(ep, "user", "add", f"root:{ROOT_PW}").returncode == 0
        assert etcdctl(ep, "auth", "enable").returncode == 0
        assert etcdctl(ep, root, "user", "add", f"alice:{ALICE_PW}").returncode == 0
        assert etcdctl(ep, f"--user=alice:{ALICE_PW}", "put", "k", "v").returncode != 0
        assert etcdctl(ep, "--user=alice:wrong-pw", "get", "k").returncode != 0
        assert etcdctl(ep, root, "user", "passwd", "alice", "--interactive=false",
                       stdin="Alice-N3w-pw\n").returncode == 0
    finally:
        c.stop_all()
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    events = [(x["event"], x.get("op"), x.get("user")) for x in lines]
    assert ("auth", "AuthEnable", "") in events
    assert ("auth", "UserAdd", "root") in events
    assert ("auth", "UserChangePassword", "root") in events
    assert ("denied", None, "alice") in events
    assert ("authentication failed", None, "alice") in events
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
    secrets = [pw.encode() for pw in (ROOT_PW, ALICE_PW, "Alice-N3w-pw", "wrong-pw")]
    for path in [audit, *tmp_path.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret not in data, f"{secret!r} found in {path}"
