"""``raftkv cluster up --tls``: a local 3-member cluster with mutual TLS (real processes,
certificates made by the command itself with :mod:`raftkv.certs`), and the client side of
TLS in ``raftkv`` and ``raftkv bench`` against it.

The flags ``up`` prints work for etcdctl and raftkv; a client without the CA, and a
plaintext etcdctl, are refused; ``--insecure-skip-tls-verify`` gets through without the CA;
the cluster keeps TLS across ``down``/``up``. Every cluster is stopped with ``cluster down``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from raftkv.cli import LocalCluster, main
from raftkv.cli._conn import Options
from raftkv.cli.admin import plaintext_warnings

pytest.importorskip("raftkv.server.app")

REPO = Path(__file__).resolve().parents[2]
needs_etcdctl = pytest.mark.skipif(shutil.which("etcdctl") is None,
                                   reason="etcdctl (Debian's etcd-client) is not installed")


def run(*argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAFTKV_", "ETCDCTL_"))} | {"ETCDCTL_API": "3"}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=env, check=False)


def raftkv(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "raftkv", *args, timeout=timeout)


def free_base_port(size: int) -> int:
    """A random run of free ports below Linux's ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000, 2)
        if all(bindable(p) for p in range(base, base + 2 * size)):
            return base
    raise RuntimeError("no free ports")


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Up:
    directory: Path
    endpoints: str
    commands: dict[str, list[str]]
    """``etcdctl`` / ``raftkv`` -> the command line ``up`` printed to reach the cluster."""

    @property
    def certs(self) -> Path:
        return self.directory / "certs"

    def files(self, *, ca: bool = True) -> list[str]:
        d = self.certs
        pair = ["--cert", str(d / "client.pem"), "--key", str(d / "client-key.pem")]
        return (["--cacert", str(d / "ca.pem")] if ca else []) + pair


def printed_commands(stderr: str) -> dict[str, list[str]]:
    words = [shlex.split(line) for line in stderr.splitlines() if line.startswith("  ")]
    return {w[0]: w[1:] for w in words if w and w[0] in ("etcdctl", "raftkv")}


def up(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return raftkv("cluster", "up", "--data-dir", str(directory), "--timeout", "60", *args)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    directory = tmp_path_factory.mktemp("tls-cluster") / "rk"
    try:
        r = up(directory, "--tls", "--size", "3", "--base-port", str(free_base_port(3)))
        assert r.returncode == 0, r.stderr
        yield Up(directory, r.stdout.strip(), printed_commands(r.stderr))
    finally:
        if (directory / "cluster.json").exists():
            raftkv("cluster", "down", "--data-dir", str(directory))


@needs_etcdctl
def test_the_printed_flags_work_for_etcdctl_and_raftkv(tls_cluster: Up) -> None:
    c = tls_cluster
    assert c.endpoints.count("https://127.0.0.1:") == 3
    assert json.loads((c.directory / "cluster.json").read_text())["tls"] is True
    assert sorted(p.name for p in c.certs.iterdir()) == sorted(
        ["ca.pem", "ca-key.pem", "client.pem", "client-key.pem"]
        + [f"n{k}{s}.pem" for k in (1, 2, 3) for s in ("", "-key")])
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in c.certs.iterdir())
    assert c.commands["etcdctl"] == [f"--endpoints={c.endpoints}", *c.files()]
    assert c.commands["raftkv"] == c.commands["etcdctl"]
    put = run("etcdctl", *c.commands["etcdctl"], "put", "tls/k", "from-etcdctl")
    assert put.stdout.strip() == "OK", put.stderr
    got = raftkv(*c.commands["raftkv"], "get", "tls/k", "--print-value-only")
    assert got.stdout == "from-etcdctl\n", got.stderr
    status = raftkv("cluster", "status", "--data-dir", str(c.directory))
    assert status.returncode == 0, status.stdout
    lines = status.stdout.splitlines()
    assert len(lines) == 3
    assert all("https://" in ln and "tls on" in ln and "range ok" in ln for ln in lines)


def test_no_ca_is_one_line_error_and_skip_verify_gets_through(tls_cluster: Up) -> None:
    c = tls_cluster
    first = c.endpoints.split(",")[0]
    r = raftkv("--endpoints", first, *c.files(ca=False), "get", "tls/none")
    assert r.returncode == 1
    assert r.stdout == ""
    [line] = r.stderr.splitlines()  # one line: gRPC's own handshake logs stay quiet
    assert line.startswith("raftkv: error: ")
    assert "did not verify" in line
    assert "--cacert" in line
    # a host:port endpoint: --insecure-skip-tls-verify alone turns TLS on
    skip = raftkv("--endpoints", first.removeprefix("https://"), "--insecure-skip-tls-verify",
                  *c.files(ca=False), "put", "tls/skip", "v")
    assert skip.stdout == "OK\n", skip.stderr
    status = raftkv("--endpoints", first, "--insecure-skip-tls-verify", *c.files(ca=False),
                    "status", "-w", "json")  # dials every member (each its own certificate)
    assert status.returncode == 0, status.stderr
    assert sorted(row["role"] for row in json.loads(status.stdout)) == [
        "follower", "follower", "leader"]
    assert "plaintext" not in status.stderr


def test_a_missing_client_certificate_is_named(tls_cluster: Up) -> None:
    c = tls_cluster
    r = raftkv("--endpoints", c.endpoints.split(",")[1], "--cacert", str(c.certs / "ca.pem"),
               "get", "k")
    assert r.returncode == 1
    [line] = r.stderr.splitlines()
    assert "requires a client certificate: give --cert and --key" in line


def test_bench_over_tls(tls_cluster: Up) -> None:
    c = tls_cluster
    r = raftkv("bench", "put", "--endpoints", c.endpoints, *c.files(), "--duration", "2",
               "--warmup", "0.2", "--concurrency", "4", "--procs", "1", "--keys", "20",
               "-w", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    [result] = json.loads(r.stdout)
    assert result["ops"] > 0
    assert result["error_count"] == 0, result["errors"]
    plain = raftkv("bench", "put", "--endpoints", c.endpoints.replace("https://", ""),
                   "--duration", "1", timeout=60)
    assert plain.returncode == 1
    assert "speaks TLS" in plain.stderr


@needs_etcdctl
def test_plaintext_etcdctl_is_refused(tls_cluster: Up) -> None:
    c = tls_cluster
    http = c.endpoints.split(",")[0].replace("https://", "http://")
    r = run("etcdctl", f"--endpoints={http}", "--dial-timeout=2s", "--command-timeout=3s",
            "put", "tls/plain", "v", timeout=30)
    assert r.returncode != 0
    assert "OK" not in r.stdout
    got = raftkv(*c.commands["raftkv"], "get", "tls/plain", "--count-only")
    assert got.stdout == "0\n", got.stderr


def test_down_and_up_keep_tls_and_reuse_the_certificates(tls_cluster: Up) -> None:
    """Last: restarts the module's cluster (it serves again afterwards)."""
    c = tls_cluster
    ca = (c.certs / "ca.pem").read_bytes()
    put = raftkv(*c.commands["raftkv"], "put", "tls/durable", "v")
    assert put.stdout == "OK\n", put.stderr
    assert raftkv("cluster", "down", "--data-dir", str(c.directory)).returncode == 0
    r = up(c.directory)  # no --tls: as recorded
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == c.endpoints
    assert "(reused)" in r.stderr
    assert printed_commands(r.stderr) == c.commands
    assert (c.certs / "ca.pem").read_bytes() == ca
    got = raftkv(*c.commands["raftkv"], "get", "tls/durable", "--print-value-only")
    assert got.stdout == "v\n", got.stderr


# -- without processes ----------------------------------------------------------------------

def test_up_refuses_to_switch_tls_on_or_off(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for tls, flag, fix in ((False, "--tls", "without --tls"), (True, "--no-tls",
                                                              "without --no-tls")):
        directory = tmp_path / flag.strip("-")
        directory.mkdir()
        cluster = LocalCluster(directory, 3, free_base_port(3), "tok", tls)
        (directory / "cluster.json").write_text(cluster.to_json())
        try:
            assert main(["cluster", "up", flag, "--data-dir", str(directory)]) == 1
        finally:
            if list(directory.glob("*.pid")):  # it started members after all: stop them
                main(["cluster", "down", "--data-dir", str(directory)])
                pytest.fail(f"'up {flag}' started a cluster in {directory}")
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("raftkv: error: ")
        assert fix in line
        assert "another --data-dir" in line
        assert not (directory / "certs").exists()


def test_plaintext_warnings_name_non_loopback_members_only() -> None:
    plain = Options(("10.0.0.1:2379",), "simple", 2.0, 5.0, None, None, None)
    urls = ["10.0.0.1:2379", "http://10.0.0.2:2379", "http://127.0.0.1:2379",
            "http://localhost:2379", "http://[::1]:2379", "http://db.example.com:2379", ""]
    assert plaintext_warnings(plain, urls) == [
        f"raftkv: warning: plaintext (no TLS) to {a}: traffic and credentials are readable "
        "on the network" for a in ("10.0.0.1:2379", "10.0.0.2:2379", "db.example.com:2379")]
    secure = Options(("https://10.0.0.1:2379",), "simple", 2.0, 5.0, None, None, None)
    assert plaintext_warnings(secure, urls) == []
