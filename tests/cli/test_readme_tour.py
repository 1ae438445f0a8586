"""README's five-minute tour runs as shown.

The shell blocks of the "A five-minute tour" section run in one bash script, with two
substitutions that keep the test away from a developer's own cluster and files: ``./dev up``
and ``./dev down`` become the ``raftkv cluster up|down`` commands they run, on a temporary
data directory (same ports), and ``/tmp/`` becomes a temporary directory.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOUR_PORTS = range(23790, 23796)


def tour_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC servers bind
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_tour_has_the_promised_steps() -> None:
    text = "\n".join(tour_commands())
    for step in ("./dev up", "raftkv put", "etcdctl", "raftkv status", "raftkv lock",
                 "raftkv txn", "examples/embed_tour.py", "raftkv snapshot save", "./dev down",
                 "cluster up --tls", "--cacert"):
        assert step in text, step


def test_readme_tour_runs(tmp_path: Path) -> None:
    if shutil.which("etcdctl") is None:
        pytest.skip("etcdctl not installed (apt-get install etcd-client)")
    if not all(_port_free(p) for p in TOUR_PORTS):
        pytest.skip("ports 23790-23795 are in use (is ./dev up running?)")
    bin_dir = Path(sys.executable).parent
    data = tmp_path / "cluster"
    down = [f"{bin_dir}/raftkv cluster down --data-dir {d} >/dev/null 2>&1 || true"
            for d in (data, tmp_path / "raftkv-tls")]
    script = ["set -euo pipefail", f"trap '{'; '.join(down)}' EXIT"]
    for line in tour_commands():
        # /tmp/ first: the substituted paths below live under /tmp themselves
        line = line.replace("/tmp/", f"{tmp_path}/").replace(".venv/bin/", f"{bin_dir}/")
        line = line.replace("./dev up", f"{bin_dir}/raftkv cluster up --size 3 "
                                         f"--data-dir {data}")
        line = line.replace("./dev down", f"{bin_dir}/raftkv cluster down --data-dir {data}")
        script.append(line)
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=REPO, capture_output=True,
                       text=True, timeout=240, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "hello\n" in out  # etcdctl read what raftkv wrote
    assert out.count("leader") >= 1
    assert re.search(r"running with fencing token \d+", out)
    assert "SUCCESS\n\nOK\nhallo\n" in out
    assert re.search(r"holding jobs/nightly/\w+ with fencing token \d+", out)
    assert (tmp_path / "raftkv-tour.db").stat().st_size > 0
    assert out.endswith("sealed\n") or "\nsealed\n" in out  # over mutual TLS
