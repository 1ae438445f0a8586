"""Mutual TLS on a 3-member cluster of real processes, with certificates made at test time.

One cluster serves mTLS on its client and peer listeners with a CRL on both sides, the peer
CNs restricted to the members' names, and TLS 1.3 as the minimum. Then:

* ``etcdctl`` and ``raftkv.client`` put, get, watch, lock and lease over it;
* each bad certificate (none, another CA, expired, revoked, a CN peers do not allow) and a
  TLS 1.2 client is refused at the handshake on every listener of every member, which names
  it in one log line: a raw TLS client sends the HTTP/2 preface and must never hear the
  gRPC server behind the listener answer;
* a process with a foreign or disallowed certificate cannot send a Raft message, and the
  cluster's leader, term and data are unaffected;
* a certificate rotated on disk is served on the next handshake, without a restart.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from raftkv import certs
from raftkv.client import TLS, Client
from raftkv.wire import raft_convert as rc
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.raftpb import raft_pb2, raft_pb2_grpc
from tests.integration.procs import ProcCluster, cluster, etcdctl

pytestmark = pytest.mark.skipif(subprocess.run(["which", "etcdctl"], capture_output=True,
                                               check=False).returncode != 0,
                                reason="etcdctl (Debian's etcd-client) is not installed")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass
class Env:
    c: ProcCluster
    d: Path

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.d / f"{name}.pem", self.d / f"{name}-key.pem"


def _write(d: Path, name: str, issued: certs.Issued) -> None:
    certs.write_file(d / f"{name}.pem", issued.cert_pem())
    certs.write_file(d / f"{name}-key.pem", issued.key_pem())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("tls")
    d = root / "certs"
    certs.init_cluster(d, ["n1", "n2", "n3"])
    ca = certs.load_ca(d)
    revoked = certs.issue(ca, "n2", hosts=("127.0.0.1",))  # a member's name: only the CRL bars it
    _write(d, "revoked", revoked)
    certs.write_file(d / "crl.pem", certs.make_crl(ca, [revoked.serial]))
    _write(d, "foreign", certs.issue(certs.make_ca("another CA"), "n1", hosts=("127.0.0.1",)))
    past = datetime.now(UTC) - timedelta(days=1)
    _write(d, "expired", certs.issue(ca, "n3", hosts=("127.0.0.1",), not_after=past))
    _write(d, "intruder", certs.issue(ca, "intruder", hosts=("127.0.0.1",)))
    flags = ("--client-crl-file", str(d / "crl.pem"), "--peer-crl-file", str(d / "crl.pem"),
             "--peer-cert-allowed-cn", "n1,n2,n3", "--tls-min-version", "TLS1.3")
    with cluster(root, 3, flags=flags, tls_dir=d) as c:
        c.leader()
        yield Env(c, d)


def probe(port: int, ca: Path, pair: tuple[Path, Path] | None = None, *,
          tls12: bool = False) -> tuple[str, int]:
    """``("accepted", local port)`` when the gRPC server behind the listener answers the
    HTTP/2 preface with its SETTINGS frame; ``("refused: ...", local port)`` otherwise."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.set_alpn_protocols(["h2"])
    if pair is not None:
        ctx.load_cert_chain(*pair)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    local = raw.getsockname()[1]
    try:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(H2_PREFACE)
            head = s.recv(9)
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}", local
    finally:
        raw.close()
    if len(head) >= 4 and head[3] == 0x04:
        return "accepted", local
    return f"refused: closed ({head!r})", local


def _log_names(env: Env, local_port: int) -> int:
    """How many member log lines name a rejected connection from ``local_port``."""
    needle = f"from 127.0.0.1:{local_port} "
    deadline = time.monotonic() + 5
    while True:
        n = sum(1 for m in env.c.members for line in m.log_path.read_text().splitlines()
                if "rejected connection" in line and needle in line)
        if n or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


BAD_FOR_BOTH = [("no certificate", None, False), ("another CA", "foreign", False),
                ("expired", "expired", False), ("revoked by the CRL", "revoked", False),
                ("TLS 1.2 below --tls-min-version", "n1", True)]


@pytest.mark.parametrize(("case", "who", "tls12"), BAD_FOR_BOTH, ids=[c[0] for c in BAD_FOR_BOTH])
def test_refused_at_the_handshake_on_every_listener(env: Env, case: str, who: str | None,
                                                    tls12: bool) -> None:
    ca = env.d / "ca.pem"
    for m in env.c.members:
        for side, port in (("client", m.client_port), ("peer", m.peer_port)):
            verdict, local = probe(port, ca, env.pair(who) if who else None, tls12=tls12)
            assert verdict.startswith("refused"), f"{case}: {m.name}'s {side} listener {verdict}"
            assert _log_names(env, local) == 1, f"{case}: no one log line for {side} {local}"


def test_good_certificates_are_accepted_and_peer_cns_are_checked(env: Env) -> None:
    ca = env.d / "ca.pem"
    for m in env.c.members:
        assert probe(m.client_port, ca, env.pair("client"))[0] == "accepted"
        assert probe(m.peer_port, ca, env.pair("n1"))[0] == "accepted"
        # the same CA, but a CN --peer-cert-allowed-cn does not name: fine as a client only
        assert probe(m.client_port, ca, env.pair("intruder"))[0] == "accepted"
        verdict, local = probe(m.peer_port, ca, env.pair("intruder"))
        assert verdict.startswith("refused"), verdict
        assert _log_names(env, local) == 1


def test_etcdctl_over_mutual_tls(env: Env) -> None:
    c, tls = env.c, env.c.etcdctl_tls()
    assert etcdctl(c.endpoints, *tls, "put", "tls/k", "v1").stdout.strip() == "OK"
    for m in c.members:
        out = etcdctl(f"https://{m.endpoint}", *tls, "get", "tls/k", "--print-value-only")
        assert out.stdout.strip() == "v1", out.stderr
    watch = subprocess.Popen(["etcdctl", f"--endpoints={c.endpoints}", *tls, "watch",
                              "tls/w"], stdout=subprocess.PIPE, text=True,
                             env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    try:
        time.sleep(1.0)
        etcdctl(c.endpoints, *tls, "put", "tls/w", "seen")
        time.sleep(1.0)
    finally:
        watch.terminate()
        out_w, _ = watch.communicate(timeout=10)
    assert "seen" in out_w
    lock = etcdctl(c.endpoints, *tls, "lock", "tls/lock", "echo", "held")
    assert lock.stdout.strip() == "held", lock.stderr
    grant = etcdctl(c.endpoints, *tls, "lease", "grant", "30")
    lease = grant.stdout.split()[1]
    assert etcdctl(c.endpoints, *tls, "put", "tls/l", "x", f"--lease={lease}").returncode == 0
    ttl = etcdctl(c.endpoints, *tls, "lease", "timetolive", lease, "--keys")
    assert "tls/l" in ttl.stdout
    status = etcdctl(c.endpoints, *tls, "endpoint", "status")
    assert status.returncode == 0
    assert status.stdout.count("https://") == 3


def test_etcdctl_without_a_client_certificate_gets_nothing(env: Env) -> None:
    out = etcdctl(f"https://{env.c.members[0].endpoint}", f"--cacert={env.d / 'ca.pem'}",
                  "--dial-timeout=2s", "--command-timeout=3s", "get", "tls/k", timeout=20)
    assert out.returncode != 0
    assert "v1" not in out.stdout
    plain = etcdctl(env.c.members[0].endpoint, "--dial-timeout=2s", "--command-timeout=3s",
                    "get", "tls/k", timeout=20)
    assert plain.returncode != 0


def test_python_client_over_mutual_tls(env: Env) -> None:
    d = env.d

    async def go() -> None:
        tls = TLS(ca_file=str(d / "ca.pem"), cert_file=str(d / "client.pem"),
                  key_file=str(d / "client-key.pem"))
        async with Client(env.c.endpoints.split(","), tls=tls, timeout=10) as client:
            await client.put("tls/py", "a")
            got = await client.get("tls/py")
            assert got is not None
            assert got.value == b"a"
            async with client.watch("tls/pyw") as events:
                await client.put("tls/pyw", "e")
                async for event in events:
                    assert event.kv is not None
                    assert event.kv.value == b"e"
                    break
            async with client.lease(ttl=10) as lease:
                await client.put("tls/pyl", "x", lease=lease.id)
                ttl = await client.time_to_live(lease.id, keys=True)
                assert b"tls/pyl" in ttl.keys
            async with client.lock("tls/pylock") as held:
                assert held.fencing_token > 0

    asyncio.run(go())


def _raft_stream(port: int, d: Path, who: str, to: int) -> grpc.StatusCode | None:
    creds = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes(),
                                         (d / f"{who}-key.pem").read_bytes(),
                                         (d / f"{who}.pem").read_bytes())
    ch = grpc.secure_channel(f"127.0.0.1:{port}", creds)
    stub = raft_pb2_grpc.RaftStub(ch)  # type: ignore[no-untyped-call]
    md = rc.peer_metadata("raftkv-cluster", 0x99, to)
    try:
        stub.Stream(iter([raft_pb2.MessageBatch()]), metadata=md, timeout=2)
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        ch.close()
    return None


def test_a_foreign_peer_cannot_send_a_raft_message(env: Env) -> None:
    c = env.c
    lead = c.leader()
    before = c.status(lead)
    assert before is not None
    for m in c.members:
        for who in ("foreign", "intruder", "revoked", "expired"):
            code = _raft_stream(m.peer_port, env.d, who, m.member_id)
            # refused at the handshake (UNAVAILABLE), or closed right after it by the CN
            # check, which grpc retries until the deadline: never delivered either way
            assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), \
                (who, m.name, code)
    assert c.leader() is lead
    after = c.status(lead)
    assert after is not None
    assert after.raftTerm == before.raftTerm
    c.kv(lead).Put(rpc_pb2.PutRequest(key=b"tls/after", value=b"ok"), timeout=10)
    hashes = set()
    for m in c.members:
        c.wait_applied(m, c.status(lead).raftAppliedIndex)  # type: ignore[union-attr]
        hashes.add(c.maint(m).HashKV(rpc_pb2.HashKVRequest(), timeout=10).hash)
    assert len(hashes) == 1


def _served_serial(port: int, d: Path) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(d / "ca.pem")
    ctx.load_cert_chain(d / "client.pem", d / "client-key.pem")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_rotated_certificate_is_served_on_the_next_handshake(env: Env) -> None:
    d, m = env.d, env.c.members[0]
    old = _served_serial(m.client_port, d)
    fresh = certs.issue(certs.load_ca(d), m.name)
    certs.write_file(d / f"{m.name}-key.pem", fresh.key_pem())
    certs.write_file(d / f"{m.name}.pem", fresh.cert_pem())
    assert fresh.serial != old
    assert _served_serial(m.client_port, d) == fresh.serial
    assert m.alive()
    tls = env.c.etcdctl_tls()
    assert etcdctl(f"https://{m.endpoint}", *tls, "put", "tls/rot", "r").returncode == 0
    out = etcdctl(f"https://{m.endpoint}", *tls, "get", "tls/rot", "--print-value-only")
    assert out.stdout.strip() == "r"


@pytest.mark.parametrize(("flags", "needles"), [
    (["--listen-client-urls", "https://127.0.0.1:{p}"], ["--cert-file", "HTTPS scheme"]),
    (["--cert-file", "{d}/n1.pem", "--key-file", "{d}/n1-key.pem", "--tls-min-version",
      "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
     ["cipher suites cannot be configured when only TLS1.3 is enabled"]),
    (["--peer-cert-file", "{d}/n1.pem", "--peer-key-file", "{d}/n1-key.pem",
      "--peer-trusted-ca-file", "{d}/ca.pem", "--peer-cert-allowed-cn", "n1",
      "--peer-cert-allowed-hostname", "localhost"],
     ["--peer-cert-allowed-cn", "--peer-cert-allowed-hostname"]),
    (["--listen-client-urls", "https://127.0.0.1:{p}", "--cert-file", "{d}/n1.pem",
      "--key-file", "{d}/client-key.pem"], ["--cert-file", "cannot load"]),
    (["--listen-client-urls", "https://127.0.0.1:{p}", "--cert-file", "{d}/missing.pem",
      "--key-file", "{d}/n1-key.pem"], ["missing.pem"]),
    (["--tls-min-version", "TLS1.1"], ["--tls-min-version", "TLS1.2 or TLS1.3"]),
])
def test_bad_tls_flags_are_one_line_errors(env: Env, tmp_path: Path, flags: list[str],
                                           needles: list[str]) -> None:
    port = env.c.members[0].client_port + 7
    argv = [a.format(d=env.d, p=port) for a in flags]
    out = subprocess.run([sys.executable, "-m", "raftkv", "serve", "--name", "x",
                          "--data-dir", str(tmp_path / "x"), *argv], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("raftkv: error: "), out.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_member_killed_with_sigkill_leaves_no_socket_directory(tmp_path: Path) -> None:
    import hashlib
    import signal
    import tempfile

    from tests.integration.procs import ProcCluster

    c = ProcCluster(tmp_path, 1, tls_dir=tmp_path / "certs")
    m = c.members[0]
    tag = hashlib.sha1(str(m.data_dir.resolve()).encode(), usedforsecurity=False)
    sockets = Path(tempfile.gettempdir()) / f"raftkv-{tag.hexdigest()[:16]}"
    try:
        c.start(m)
        c.leader()
        assert sockets.is_dir()
        assert (sockets.stat().st_mode & 0o777) == 0o700
        c.kill(m, signal.SIGKILL)
        assert sockets.is_dir()  # left behind by the kill ...
        c.start(m)
        c.leader()  # ... and replaced at the next start
        c.kill(m, signal.SIGTERM)
        assert not sockets.exists()
    finally:
        c.stop_all()
