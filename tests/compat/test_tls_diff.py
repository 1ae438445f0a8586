"""etcdctl over mutual TLS against a real etcd and against raftkv, with the same
certificates and the same flags: the same commands give the same output, and the same bad
credentials fail the same way."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from raftkv import certs
from tests.compat.clusters import ETCD_BIN, etcd_available, etcdctl_available, run_etcdctl
from tests.integration.procs import ProcCluster, free_ports, stop_processes

pytestmark = pytest.mark.skipif(not (etcd_available() and etcdctl_available()),
                                reason="needs Debian's etcd-server and etcd-client")


def _tls_flags(d: Path) -> list[str]:
    cert, key, ca = str(d / "n1.pem"), str(d / "n1-key.pem"), str(d / "ca.pem")
    return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
            "--client-cert-auth", "--peer-cert-file", cert, "--peer-key-file", key,
            "--peer-trusted-ca-file", ca, "--peer-client-cert-auth"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    root = tmp_path_factory.mktemp("tlsdiff")
    d = root / "certs"
    certs.init_cluster(d, ["n1"])
    other = certs.make_ca("another CA")
    foreign = certs.issue(other, "client", hosts=(), server=False)
    certs.write_file(d / "foreign.pem", foreign.cert_pem())
    certs.write_file(d / "foreign-key.pem", foreign.key_pem())
    gone = certs.issue(certs.load_ca(d), "client", hosts=(), server=False,
                       not_after=datetime.now(UTC) - timedelta(days=1))
    certs.write_file(d / "expired.pem", gone.cert_pem())
    certs.write_file(d / "expired-key.pem", gone.key_pem())
    cport, pport = free_ports(2)
    etcd = subprocess.Popen(
        [ETCD_BIN, "--name", "n1", "--data-dir", str(root / "etcd"),
         "--listen-client-urls", f"https://127.0.0.1:{cport}",
         "--advertise-client-urls", f"https://127.0.0.1:{cport}",
         "--listen-peer-urls", f"https://127.0.0.1:{pport}",
         "--initial-advertise-peer-urls", f"https://127.0.0.1:{pport}",
         "--initial-cluster", f"n1=https://127.0.0.1:{pport}", *_tls_flags(d),
         "--logger", "zap", "--log-outputs", "stderr"],
        stdout=subprocess.DEVNULL, stderr=(root / "etcd.log").open("wb"))
    rk = ProcCluster(root / "raftkv", 1, tls_dir=d)
    rk.start_all()
    try:
        rk.leader()
        etcd_ep, raftkv_ep = f"https://127.0.0.1:{cport}", rk.endpoints
        _wait(etcd_ep, d)
        yield etcd_ep, raftkv_ep, d
    finally:
        rk.stop_all()
        stop_processes([etcd])


def _creds(d: Path, who: str | None) -> list[str]:
    out = [f"--cacert={d / 'ca.pem'}"]
    if who is not None:
        out += [f"--cert={d / f'{who}.pem'}", f"--key={d / f'{who}-key.pem'}"]
    return out


def _wait(endpoint: str, d: Path) -> None:
    deadline = time.monotonic() + 30
    while run_etcdctl(endpoint, [*_creds(d, "client"), "get", "x"]).returncode != 0:
        assert time.monotonic() < deadline, f"{endpoint} did not serve"
        time.sleep(0.2)


def _norm(text: str) -> str:
    text = re.sub(r'"ts":"[^"]*"', '"ts":T', text)
    text = re.sub(r"127\.0\.0\.1:\d+", "ADDR", text)
    text = re.sub(r"client-[0-9a-f-]{36}", "client-ID", text)
    return re.sub(r"took = [0-9.]+m?s", "took = D", text)


CASES: list[tuple[str, str | None, list[str]]] = [
    ("put", "client", ["put", "tls/k", "v"]),
    ("get", "client", ["get", "tls/k"]),
    ("get --print-value-only", "client", ["get", "tls/k", "--print-value-only"]),
    ("del", "client", ["del", "tls/k"]),
    ("no client certificate", None, ["get", "tls/k"]),
    ("a certificate from another CA", "foreign", ["get", "tls/k"]),
    ("an expired certificate", "expired", ["get", "tls/k"]),
]


@pytest.mark.parametrize(("case", "who", "args"), CASES, ids=[c[0] for c in CASES])
def test_etcdctl_over_tls_same_as_etcd(pair: tuple[str, str, Path], case: str,
                                       who: str | None, args: list[str]) -> None:
    etcd_ep, raftkv_ep, d = pair
    timeouts = ["--dial-timeout=2s", "--command-timeout=3s"]
    got = {name: run_etcdctl(ep, [*_creds(d, who), *timeouts, *args])
           for name, ep in (("etcd", etcd_ep), ("raftkv", raftkv_ep))}
    assert got["raftkv"].returncode == got["etcd"].returncode, case
    assert got["raftkv"].stdout == got["etcd"].stdout, case
    last = {name: _norm(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else ""
            for name, p in got.items()}
    assert last["raftkv"] == last["etcd"], case


def test_plaintext_to_a_tls_port_fails_on_both(pair: tuple[str, str, Path]) -> None:
    etcd_ep, raftkv_ep, _ = pair
    for ep in (etcd_ep, raftkv_ep):
        p = run_etcdctl(ep.replace("https://", "http://"),
                        ["--dial-timeout=2s", "--command-timeout=3s", "get", "tls/k"])
        assert p.returncode != 0
