"""``raftkv certs`` and :mod:`raftkv.certs`: the files, their modes, what is in the
certificates, that the chain verifies (with ``cryptography``, with a TLS handshake in
memory and with the system ``openssl``), expired and revoked certificates, and one-line
errors. No server is started.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raftkv import certs
from raftkv.cli import main
from raftkv.errors import ConfigError

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="no openssl on PATH")
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
E = TypeVar("E", bound=x509.ExtensionType)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ext(cert: x509.Certificate, kind: type[E]) -> E:
    """The value of the certificate's extension of type ``kind``."""
    return cert.extensions.get_extension_for_class(kind).value


def eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(ext(cert, x509.ExtendedKeyUsage))


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(IP addresses, DNS names) of the certificate's subjectAltNames."""
    value = ext(cert, x509.SubjectAlternativeName)
    return ([str(ip) for ip in value.get_values_for_type(x509.IPAddress)],
            value.get_values_for_type(x509.DNSName))


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30)


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("raftkv: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory made by ``raftkv certs init`` (three members, two clients)."""
    directory = tmp_path_factory.mktemp("certs") / "tls"
    assert main(["certs", "init", "--dir", str(directory), "--members", "n1,n2,n3",
                 "--hosts", "127.0.0.1,::1,localhost,*.rk.example.com",
                 "--clients", "client,alice"]) == 0
    return directory


# -- init: files, modes, contents -------------------------------------------------------------

def test_init_writes_every_file_0600_in_a_0700_directory(cluster: Path) -> None:
    names = {"ca", "n1", "n2", "n3", "client", "alice"}
    expected = {f"{n}.pem" for n in names} | {f"{n}-key.pem" for n in names}
    assert {p.name for p in cluster.iterdir()} == expected  # no temporary file left
    assert mode(cluster) == 0o700
    for path in cluster.iterdir():
        assert mode(path) == 0o600, path
    assert b"-----BEGIN PRIVATE KEY-----" in (cluster / "n1-key.pem").read_bytes()  # PKCS8


def test_the_chain_verifies(cluster: Path) -> None:
    ca = certs.load_ca(cluster)
    assert ext(ca.cert, x509.BasicConstraints) == x509.BasicConstraints(True, 0)
    ca.cert.verify_directly_issued_by(ca.cert)  # self-signed
    for name in ("n1", "n2", "n3", "client", "alice"):
        cert = certs.load_cert(cluster / f"{name}.pem")
        cert.verify_directly_issued_by(ca.cert)
        assert cn(cert) == name
        assert ext(cert, x509.BasicConstraints) == x509.BasicConstraints(False, None)
        usage = ext(cert, x509.KeyUsage)
        assert usage.digital_signature
        assert usage.key_encipherment
        assert not usage.key_cert_sign
        aki = ext(cert, x509.AuthorityKeyIdentifier)
        assert aki.key_identifier == ext(ca.cert, x509.SubjectKeyIdentifier).digest
        remaining = cert.not_valid_after_utc - datetime.now(UTC)
        assert timedelta(days=364) < remaining <= timedelta(days=365)


def test_members_serve_and_are_clients_with_the_hosts_as_sans(cluster: Path) -> None:
    for name in ("n1", "n2", "n3"):
        cert = certs.load_cert(cluster / f"{name}.pem")
        assert eku(cert) == {SERVER, CLIENT}
        assert sans(cert) == (["127.0.0.1", "::1"], ["localhost", "*.rk.example.com"])


def test_clients_are_only_clients(cluster: Path) -> None:
    for name in ("client", "alice"):
        cert = certs.load_cert(cluster / f"{name}.pem")
        assert eku(cert) == {CLIENT}


def test_mutual_tls_handshake_in_memory(cluster: Path) -> None:
    """A member's certificate serves TLS to 127.0.0.1 and localhost and takes a client's
    certificate, as Python's ssl (OpenSSL) checks them, hostname included."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cluster / "n1.pem", cluster / "n1-key.pem")
    server_ctx.load_verify_locations(cluster / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    for host in ("127.0.0.1", "localhost", "a.rk.example.com"):
        client_ctx = ssl.create_default_context(cafile=str(cluster / "ca.pem"))
        client_ctx.load_cert_chain(cluster / "client.pem", cluster / "client-key.pem")
        peer = handshake(server_ctx, client_ctx, host)
        assert peer == "client"
    client_ctx = ssl.create_default_context(cafile=str(cluster / "ca.pem"))
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(server_ctx, client_ctx, "10.9.9.9")


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str) -> str:
    """Run a TLS handshake between two memory BIO pairs; return the client's CN."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=host)
    done = {"server": False, "client": False}
    for _ in range(20):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    # a TLS 1.3 server checks the client's certificate after its own side is done
    client.write(b"ping")
    s_in.write(c_out.read())
    assert server.read(4) == b"ping"
    peer = server.getpeercert(binary_form=True)
    assert peer is not None
    return cn(x509.load_der_x509_certificate(peer))


def test_rerunning_init_reuses_the_ca_and_adds_members(cluster: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        ) -> None:
    directory = tmp_path / "again"
    shutil.copytree(cluster, directory)
    ca_bytes = (directory / "ca.pem").read_bytes(), (directory / "ca-key.pem").read_bytes()
    ca_mtime = (directory / "ca-key.pem").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["certs", "init", "--dir", str(directory), "--members", "n4",
                 "--clients", "bob"]) == 0
    out = capsys.readouterr().out
    assert f"kept   {directory / 'ca.pem'}" in out
    assert f"wrote  {directory / 'n4.pem'}" in out
    assert ((directory / "ca.pem").read_bytes(), (directory / "ca-key.pem").read_bytes()
            ) == ca_bytes
    assert (directory / "ca-key.pem").stat().st_mtime_ns == ca_mtime
    ca = certs.load_ca(directory)
    for name in ("n1", "n4", "bob"):
        certs.load_cert(directory / f"{name}.pem").verify_directly_issued_by(ca.cert)
    assert eku(certs.load_cert(directory / "bob.pem")) == {CLIENT}


def test_init_prints_the_flags_to_use(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      ) -> None:
    d = tmp_path / "flags"
    assert main(["certs", "init", "--dir", str(d)]) == 0
    out = capsys.readouterr().out
    assert f"--cacert {d}/ca.pem --cert {d}/client.pem --key {d}/client-key.pem" in out
    assert (f"--cert-file {d}/n1.pem --key-file {d}/n1-key.pem --trusted-ca-file "
            f"{d}/ca.pem --client-cert-auth") in out
    assert (f"--peer-cert-file {d}/n1.pem --peer-key-file {d}/n1-key.pem "
            f"--peer-trusted-ca-file {d}/ca.pem --peer-client-cert-auth") in out
    assert {p.name for p in d.iterdir()} >= {"n1.pem", "n2.pem", "n3.pem", "client.pem"}
    # the defaults: 127.0.0.1 and localhost
    assert sans(certs.load_cert(d / "n2.pem")) == (["127.0.0.1"], ["localhost"])


def test_init_cluster_returns_the_paths(tmp_path: Path) -> None:
    paths = certs.init_cluster(tmp_path / "lib", ["a"], clients=[])
    assert paths == {"ca": tmp_path / "lib/ca.pem", "ca-key": tmp_path / "lib/ca-key.pem",
                     "a": tmp_path / "lib/a.pem", "a-key": tmp_path / "lib/a-key.pem"}


def test_init_refuses_to_overwrite_a_lone_ca_key(tmp_path: Path) -> None:
    d = tmp_path / "half"
    d.mkdir()
    (d / "ca-key.pem").write_bytes(b"precious")
    with pytest.raises(ConfigError, match=r"ca-key\.pem exists without .*refusing") as info:
        certs.init_cluster(d, ["n1"])
    assert "\n" not in str(info.value)
    assert (d / "ca-key.pem").read_bytes() == b"precious"
    assert sorted(p.name for p in d.iterdir()) == ["ca-key.pem"]  # nothing written


# -- the library: expired certificates, CRLs, write_file ------------------------------------

def test_an_expired_certificate_is_expired() -> None:
    ca = certs.make_ca()
    now = datetime.now(UTC)
    old = certs.issue(ca, "old", not_after=now - timedelta(days=1))
    assert old.cert.not_valid_after_utc < now
    assert old.cert.not_valid_before_utc < old.cert.not_valid_after_utc
    old.cert.verify_directly_issued_by(ca.cert)
    store = x509.verification.PolicyBuilder().store(x509.verification.Store([ca.cert]))
    verifier = store.time(now).build_server_verifier(x509.DNSName("localhost"))
    with pytest.raises(x509.verification.VerificationError, match="not valid at validation time"):
        verifier.verify(old.cert, [])
    fresh = certs.issue(ca, "fresh")
    assert verifier.verify(fresh.cert, [])[-1] == ca.cert  # the same check passes


def test_explicit_validity_and_hosts() -> None:
    ca = certs.make_ca("test CA", days=10)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    leaf = certs.issue(ca, "later", hosts=["[fe80::1]", "10.0.0.7", "n1.example.com",
                                           "10.0.0.7"],
                       not_before=start, not_after=start + timedelta(hours=1))
    assert (leaf.cert.not_valid_before_utc, leaf.cert.not_valid_after_utc) == (
        start, start + timedelta(hours=1))
    assert sans(leaf.cert) == (["fe80::1", "10.0.0.7"], ["n1.example.com"])
    ips = ext(leaf.cert, x509.SubjectAlternativeName).get_values_for_type(x509.IPAddress)
    assert ips == [ipaddress.ip_address("fe80::1"), ipaddress.ip_address("10.0.0.7")]
    assert cn(ca.cert) == "test CA"
    assert leaf.serial == leaf.cert.serial_number > 0


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"hosts": ["bad host"]}, "'bad host' is neither an IP address nor a DNS name"),
    ({"hosts": ["*"]}, "'*'"),
    ({"hosts": ["a..b"]}, "'a..b'"),
    ({"hosts": []}, "needs at least one host"),
    ({"server": False, "client": False}, "give server=True, client=True or both"),
    ({"days": 0}, "days=0"),
    ({"not_before": datetime(2030, 1, 2, tzinfo=UTC),
      "not_after": datetime(2030, 1, 1, tzinfo=UTC)}, "must be later than"),
])
def test_issue_refuses_bad_input(kwargs: dict[str, object], needle: str) -> None:
    ca = certs.make_ca()
    with pytest.raises(ConfigError) as info:
        certs.issue(ca, "x", **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_the_crl_lists_the_revoked_serials_and_is_signed_by_the_ca() -> None:
    ca = certs.make_ca()
    gone, kept = certs.issue(ca, "gone"), certs.issue(ca, "kept")
    crl = x509.load_pem_x509_crl(certs.make_crl(ca, [gone.serial, gone.serial], days=7))
    assert crl.is_signature_valid(ca.key.public_key())
    assert not crl.is_signature_valid(certs.make_ca().key.public_key())
    assert crl.issuer == ca.cert.subject
    assert [r.serial_number for r in crl] == [gone.serial]
    assert crl.get_revoked_certificate_by_serial_number(kept.serial) is None
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - datetime.now(UTC) <= timedelta(days=7)
    with pytest.raises(ConfigError, match="serial number 0"):
        certs.make_crl(ca, [0])


def test_write_file_is_0600_atomic_and_fixes_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "secret.pem"
    certs.write_file(path, b"one")
    assert (path.read_bytes(), mode(path), mode(path.parent)) == (b"one", 0o600, 0o700)
    path.chmod(0o644)
    certs.write_file(path, b"two")
    assert (path.read_bytes(), mode(path)) == (b"two", 0o600)
    assert [p.name for p in path.parent.iterdir()] == ["secret.pem"]


def test_load_ca_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ca\.pem not found.*raftkv certs init --dir"):
        certs.load_ca(tmp_path)
    certs.init_cluster(tmp_path, ["n1"])
    (tmp_path / "ca-key.pem").write_bytes((tmp_path / "n1-key.pem").read_bytes())
    with pytest.raises(ConfigError, match=r"ca-key\.pem is not the key of"):
        certs.load_ca(tmp_path)
    (tmp_path / "ca-key.pem").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        certs.load_ca(tmp_path)


# -- issue and crl through the command line ------------------------------------------------

def test_issue_command(cluster: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       ) -> None:
    d = tmp_path / "issue"
    shutil.copytree(cluster, d)
    assert main(["certs", "issue", "--dir", str(d), "n9", "--hosts", "10.1.2.3,n9.example",
                 "--days", "30"]) == 0
    assert main(["certs", "issue", "--dir", str(d), "carol", "--client-only"]) == 0
    assert f"wrote  {d / 'carol.pem'}" in capsys.readouterr().out
    ca = certs.load_ca(d)
    n9, carol = certs.load_cert(d / "n9.pem"), certs.load_cert(d / "carol.pem")
    for cert in (n9, carol):
        cert.verify_directly_issued_by(ca.cert)
    assert (eku(n9), sans(n9)) == ({SERVER, CLIENT}, (["10.1.2.3"], ["n9.example"]))
    assert n9.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=30)
    assert eku(carol) == {CLIENT}
    with pytest.raises(x509.ExtensionNotFound):
        ext(carol, x509.SubjectAlternativeName)
    assert mode(d / "n9-key.pem") == mode(d / "carol-key.pem") == 0o600


def test_crl_command_and_openssl(cluster: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "crl"
    shutil.copytree(cluster, d)
    assert main(["certs", "crl", "--dir", str(d), "--revoke",
                 f"{d / 'alice.pem'},{d / 'n3.pem'}"]) == 0
    assert f"wrote  {d / 'crl.pem'}" in capsys.readouterr().out
    assert mode(d / "crl.pem") == 0o600
    ca = certs.load_ca(d)
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.key.public_key())
    revoked = {r.serial_number for r in crl}
    assert revoked == {certs.load_cert(d / f"{n}.pem").serial_number for n in ("alice", "n3")}
    out = tmp_path / "elsewhere.pem"
    assert main(["certs", "crl", "--dir", str(d), "--out", str(out)]) == 0  # an empty CRL
    assert list(x509.load_pem_x509_crl(out.read_bytes())) == []


@needs_openssl
def test_openssl_verifies_the_chain_and_honours_the_crl(cluster: Path, tmp_path: Path,
                                                        ) -> None:
    d = tmp_path / "openssl"
    shutil.copytree(cluster, d)
    ca, crl = str(d / "ca.pem"), str(d / "crl.pem")
    for name in ("n1", "client"):
        proc = openssl("verify", "-CAfile", ca, str(d / f"{name}.pem"))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ": OK" in proc.stdout
    assert main(["certs", "crl", "--dir", str(d), "--revoke", str(d / "alice.pem")]) == 0
    proc = openssl("verify", "-crl_check", "-CRLfile", crl, "-CAfile", ca, str(d / "alice.pem"))
    assert proc.returncode != 0
    assert "certificate revoked" in proc.stdout + proc.stderr
    proc = openssl("verify", "-crl_check", "-CRLfile", crl, "-CAfile", ca, str(d / "n1.pem"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the others still verify
    proc = openssl("crl", "-in", crl, "-noout", "-CAfile", ca)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify OK" in proc.stdout + proc.stderr


@needs_openssl
def test_openssl_rejects_an_expired_certificate(tmp_path: Path) -> None:
    ca = certs.make_ca()
    old = certs.issue(ca, "old", not_after=datetime.now(UTC) - timedelta(hours=1))
    certs.write_file(tmp_path / "ca.pem", ca.cert_pem())
    certs.write_file(tmp_path / "old.pem", old.cert_pem())
    proc = openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "old.pem"))
    assert proc.returncode != 0
    assert "expired" in proc.stdout + proc.stderr


# -- one-line errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "needles"), [
    (["certs"], ["required"]),
    (["certs", "init"], ["--dir"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "n1,,n3"], ["--members", "empty entry"]),
    (["certs", "init", "--dir", "{d}/x", "--members", ""], ["--members", "empty entry"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "a/b"], ["member name 'a/b'"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "ca"], ["member name 'ca'"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "n1-key"], ["'n1-key'", "-key"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "..", "--clients", ""], ["'..'"]),
    (["certs", "init", "--dir", "{d}/x", "--members", "n1", "--clients", "n1"],
     ["'n1' is named twice"]),
    (["certs", "init", "--dir", "{d}/x", "--hosts", "a b"], ["'a b'", "DNS name"]),
    (["certs", "init", "--dir", "{d}/x", "--hosts", ""], ["--hosts", "empty entry"]),
    (["certs", "init", "--dir", "{d}/x", "--days", "0"], ["--days=0"]),
    (["certs", "init", "--dir", "{d}/x", "--days", "soon"], ["--days", "'soon'"]),
    (["certs", "issue", "--dir", "{d}/nothing", "n4"], ["nothing/ca.pem not found",
                                                        "raftkv certs init"]),
    (["certs", "issue", "--dir", "{d}/ok", "x/y"], ["certificate name 'x/y'"]),
    (["certs", "issue", "--dir", "{d}/ok"], ["NAME"]),
    (["certs", "crl", "--dir", "{d}/ok", "--revoke", "{d}/ok/missing.pem"],
     ["missing.pem not found"]),
    (["certs", "crl", "--dir", "{d}/ok", "--revoke", "{d}/ok/n1-key.pem"],
     ["n1-key.pem is not a PEM certificate"]),
    (["certs", "crl", "--dir", "{d}/ok", "--revoke", "{d}/other/n1.pem"],
     ["other/n1.pem was not issued by the CA in"]),
    (["certs", "crl", "--dir", "{d}/nothing", "--revoke", "{d}/ok/n1.pem"],
     ["nothing/ca.pem not found"]),
])
def test_bad_input_is_one_line(argv: list[str], needles: list[str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ok", "other"):
        certs.init_cluster(tmp_path / name, ["n1"], clients=[])
    before = set(tmp_path.rglob("*"))
    capsys.readouterr()
    code = main([a.replace("{d}", str(tmp_path)) for a in argv])
    captured = capsys.readouterr()
    assert code != 0
    one_error_line(captured.err, *needles)
    assert captured.out == ""
    assert set(tmp_path.rglob("*")) == before  # nothing written


def test_init_over_half_a_ca_is_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    certs.init_cluster(tmp_path, ["n1"])
    (tmp_path / "ca.pem").unlink()
    assert main(["certs", "init", "--dir", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, "ca-key.pem exists without", "refusing",
                   "remove")


@pytest.mark.parametrize("argv", [
    ["certs", "--help"], ["certs", "init", "--help"], ["certs", "issue", "--help"],
    ["certs", "crl", "--help"],
])
def test_help_has_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "usage: raftkv certs" in out
    assert "example:" in out
