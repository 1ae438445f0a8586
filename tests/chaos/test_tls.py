"""``--tls``: the run's certificates name each member's own addresses, and the members'
refusals are counted from their logs."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from chaos.run_cli import build_parser, run_config
from chaos.tls import make_certs, rejections


def test_each_member_certificate_names_its_own_addresses(tmp_path: Path) -> None:
    tls = make_certs(tmp_path / "tls", [("n1", ["10.77.9.1"]), ("n2", ["10.77.9.2"])])
    for name, ip in (("n1", "10.77.9.1"), ("n2", "10.77.9.2")):
        cert = x509.load_pem_x509_certificate(tls.cert_file(name).read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ip)]
    flags = tls.server_flags("n2")
    assert flags[flags.index("--peer-cert-file") + 1] == str(tls.cert_file("n2"))
    assert "--client-cert-auth=true" in flags
    assert "--peer-client-cert-auth=true" in flags
    assert tls.client().cert_file == str(tls.cert_file("client"))
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700


def test_refusals_are_counted_by_side_and_certificate(tmp_path: Path) -> None:
    log = tmp_path / "n1.log"
    log.write_text(
        "2026-12-07 23:45:55,577 WARNING raftkv.server.tls: rejected connection on the peer "
        "listener from 127.0.0.1:45900 (error 'peer certificate IP SANs 127.0.0.2 do not "
        "include the remote address 127.0.0.1')\n"
        "2026-12-07 23:45:56,001 WARNING raftkv.server.tls: rejected connection on the client "
        "listener from 10.77.1.254:5000 (error 'EOF occurred in violation of protocol')\n"
        "2026-12-07 23:54:39,316 WARNING raftkv.server.tls: rejected connection on the client "
        "listener from 127.0.0.1:47010 (error 'PEER_DID_NOT_RETURN_A_CERTIFICATE')\n")
    assert rejections([log, tmp_path / "missing.log"]) == {
        "client": 2, "client-certificate": 1, "peer": 1, "peer-certificate": 1}


def test_the_tls_flag_reaches_the_run_config() -> None:
    assert run_config(build_parser().parse_args(["--out", "o", "--tls"])).tls is True
    assert run_config(build_parser().parse_args(["--out", "o"])).tls is False
