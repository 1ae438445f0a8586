"""``raftkv certs init|issue|crl``: a CA and the certificates of a TLS cluster.

Everything lives under one directory (the layout is in :mod:`raftkv.certs`)::

    DIR/ca.pem, DIR/ca-key.pem    the CA; made by the first ``init``, reused after
    DIR/NAME.pem, DIR/NAME-key.pem one certificate and key per member or client
    DIR/crl.pem                   written by ``crl``
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from raftkv import certs
from raftkv.cli._common import FMT, Parser, int_flag
from raftkv.errors import ConfigError

__all__ = ["add_certs"]

HOSTS_EXAMPLE = "127.0.0.1,localhost"

CERTS_EPILOG = """\
example:
  raftkv certs init --dir /tmp/rk-certs --members n1,n2,n3     # prints the flags to use
  raftkv certs issue --dir /tmp/rk-certs n4 --hosts 10.0.0.4,n4.example.com
  raftkv certs issue --dir /tmp/rk-certs alice --client-only
  raftkv certs crl --dir /tmp/rk-certs --revoke /tmp/rk-certs/alice.pem
"""


def add_certs(sub: Any) -> None:
    """Add ``raftkv certs init|issue|crl``."""
    group = sub.add_parser("certs", help="make a CA, member and client certificates, CRLs",
                           formatter_class=FMT, epilog=CERTS_EPILOG,
                           description="Certificates for TLS between clients and members and "
                                       "between members, all under one directory: ECDSA "
                                       "P-256 keys, files mode 0600.")
    csub = group.add_subparsers(dest="certs_command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    init = csub.add_parser(
        "init", help="make a CA and the certificates of every member and client",
        formatter_class=FMT,
        description="Write DIR/ca.pem and DIR/ca-key.pem (or reuse them if both are there), "
                    "one certificate per member (serverAuth and clientAuth, for its client "
                    "and its peer listener, with --hosts as subjectAltNames) and one per "
                    "client (clientAuth). Print the files and the flags that use them.",
        epilog="example:\n  raftkv certs init --dir /tmp/rk-certs\n"
               "  raftkv certs init --dir /tmp/rk-certs --members n1,n2,n3 "
               "--hosts 127.0.0.1,::1,localhost,*.rk.example.com --clients client,alice\n")
    _dir_flag(init)
    init.add_argument("--members", default="n1,n2,n3", metavar="NAME,...",
                      help="member names (default: n1,n2,n3)")
    _hosts_flag(init, "of every member")
    init.add_argument("--clients", default="client", metavar="NAME,...",
                      help="client certificate names (default: client)")
    _days_flag(init)
    init.set_defaults(func=_cmd_init)
    one = csub.add_parser(
        "issue", help="issue one more certificate from the CA in DIR", formatter_class=FMT,
        description="Write DIR/NAME.pem and DIR/NAME-key.pem, signed by the CA in DIR: a "
                    "member's certificate (serverAuth and clientAuth) or, with "
                    "--client-only, a client's. An existing NAME.pem is replaced.",
        epilog="example:\n  raftkv certs issue --dir /tmp/rk-certs n4 --hosts 10.0.0.4\n"
               "  raftkv certs issue --dir /tmp/rk-certs alice --client-only\n")
    _dir_flag(one)
    one.add_argument("name", metavar="NAME", help="the certificate's common name and file name")
    _hosts_flag(one, "(default: 127.0.0.1,localhost; none with --client-only)", default=None)
    one.add_argument("--client-only", action="store_true",
                     help="a client certificate (clientAuth only)")
    _days_flag(one)
    one.set_defaults(func=_cmd_issue)
    crl = csub.add_parser(
        "crl", help="write a certificate revocation list", formatter_class=FMT,
        description="Write a CRL signed by the CA in DIR that revokes the given certificates "
                    "(by serial number). It lists exactly those: name every revoked "
                    "certificate each time.",
        epilog="example:\n  raftkv certs crl --dir /tmp/rk-certs "
               "--revoke /tmp/rk-certs/alice.pem,/tmp/rk-certs/n3.pem\n")
    _dir_flag(crl)
    crl.add_argument("--revoke", action="append", default=[], metavar="FILE,...",
                     help="certificates to revoke (repeatable)")
    crl.add_argument("--out", metavar="FILE", help="where to write it (default: DIR/crl.pem)")
    crl.add_argument("--days", type=int_flag, default=30, metavar="N",
                     help="days until the CRL's next update (default: 30)")
    crl.set_defaults(func=_cmd_crl)


def _dir_flag(p: Parser) -> None:
    p.add_argument("--dir", required=True, metavar="DIR", help="the certificates' directory")


def _hosts_flag(p: Parser, whose: str, default: str | None = ",".join(certs.DEFAULT_HOSTS),
                ) -> None:
    p.add_argument("--hosts", default=default, metavar="HOST,...",
                   help=f"IP addresses and DNS names for the subjectAltNames {whose}"
                        + ("" if default is None else f" (default: {default})"))


def _days_flag(p: Parser) -> None:
    p.add_argument("--days", type=int_flag, default=365, metavar="N",
                   help="days the certificates are valid (default: 365)")


def _names(text: str, flag: str, example: str = "n1,n2,n3") -> list[str]:
    """The comma-separated words of ``text``; a one-line error if one is empty."""
    words = [w.strip() for w in text.split(",")]
    if not all(words):
        raise ConfigError(f"{flag}={text!r} has an empty entry; give a comma-separated "
                          f"list such as {example}")
    return words


def _check_days(days: int) -> None:
    if days < 1:
        raise ConfigError(f"--days={days} must be at least 1")


def _q(path: Path) -> str:
    return shlex.quote(str(path))


# -- commands -------------------------------------------------------------------------------

def _cmd_init(ns: argparse.Namespace) -> int:
    directory = Path(ns.dir).absolute()
    members = _names(ns.members, "--members")
    clients = _names(ns.clients, "--clients") if ns.clients.strip() else []
    hosts = _names(ns.hosts, "--hosts", HOSTS_EXAMPLE)
    _check_days(ns.days)
    reused = (directory / certs.CA_CERT).exists() and (directory / certs.CA_KEY).exists()
    paths = certs.init_cluster(directory, members, hosts=hosts, clients=clients,
                               days=ns.days)
    for name, path in paths.items():
        if name in ("ca", "ca-key") and reused:
            print(f"kept   {path} (the CA already there)")
        else:
            print(f"wrote  {path}")
    print()
    ca = _q(paths["ca"])
    if clients:
        print(f"client flags (etcdctl, raftkv) for {clients[0]!r}:")
        print(f"  --cacert {ca} --cert {_q(paths[clients[0]])} "
              f"--key {_q(paths[clients[0] + '-key'])}")
    first = members[0]
    cert, key = _q(paths[first]), _q(paths[first + "-key"])
    print(f"member flags for {first!r} (the others alike, with their own files), "
          "with https:// client and peer URLs:")
    print(f"  --cert-file {cert} --key-file {key} --trusted-ca-file {ca} --client-cert-auth")
    print(f"  --peer-cert-file {cert} --peer-key-file {key} --peer-trusted-ca-file {ca} "
          "--peer-client-cert-auth")
    return 0


def _cmd_issue(ns: argparse.Namespace) -> int:
    directory = Path(ns.dir).absolute()
    name = certs.check_name(ns.name, "certificate name")
    _check_days(ns.days)
    if ns.hosts is None:
        hosts = [] if ns.client_only else list(certs.DEFAULT_HOSTS)
    else:
        hosts = _names(ns.hosts, "--hosts", HOSTS_EXAMPLE)
    ca = certs.load_ca(directory)
    leaf = certs.issue(ca, name, hosts=hosts, server=not ns.client_only, days=ns.days)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    certs.write_file(key_path, leaf.key_pem())
    certs.write_file(cert_path, leaf.cert_pem())
    print(f"wrote  {cert_path} (serial {leaf.serial:#x})")
    print(f"wrote  {key_path}")
    return 0


def _cmd_crl(ns: argparse.Namespace) -> int:
    directory = Path(ns.dir).absolute()
    _check_days(ns.days)
    files = [Path(f) for text in ns.revoke for f in _names(text, "--revoke", "DIR/a.pem,DIR/b.pem")]
    ca = certs.load_ca(directory)
    serials: list[int] = []
    for path in files:
        cert = certs.load_cert(path)
        try:
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise ConfigError(f"{path} was not issued by the CA in {directory}; only its "
                              "certificates can be revoked by its CRL") from None
        serials.append(cert.serial_number)
    out = Path(ns.out).absolute() if ns.out else directory / certs.CRL
    certs.write_file(out, certs.make_crl(ca, serials, days=ns.days))
    for path, serial in zip(files, serials, strict=True):
        print(f"revoked {path} (serial {serial:#x})")
    print(f"wrote  {out}")
    return 0
