"""Certificates for raftkv's TLS: a CA, member and client certificates, and CRLs.

``raftkv certs init`` (:mod:`raftkv.cli.certs`) lays out one directory::

    DIR/ca.pem, DIR/ca-key.pem    the cluster's CA (reused when the command is run again)
    DIR/M.pem, DIR/M-key.pem      member M: serverAuth + clientAuth, one certificate for both
                                  the client and the peer listener (as etcd's guides do)
    DIR/C.pem, DIR/C-key.pem      client C: clientAuth only
    DIR/crl.pem                   a certificate revocation list (``raftkv certs crl``)

Keys are ECDSA P-256 (PKCS8, unencrypted PEM) and signatures SHA-256. Every file is written
atomically with mode 0600; a directory created for them gets mode 0700. The tests make
their CAs, expired and revoked certificates with the same functions.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raftkv.errors import ConfigError

__all__ = [
    "CA_CERT", "CA_KEY", "CRL", "DEFAULT_HOSTS", "Authority", "Issued", "check_name",
    "init_cluster", "issue", "load_ca", "load_cert", "make_ca", "make_crl", "write_file",
]

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CRL = "crl.pem"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
CLOCK_SKEW = timedelta(minutes=5)
"""How far back a new certificate's validity starts, so that a peer whose clock is a little
behind accepts it at once."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED = frozenset({"ca", "crl"})  # their files are DIR/ca.pem and DIR/crl.pem
_DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_ISSUER_KEYS = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


@dataclass(frozen=True)
class Authority:
    """A certificate authority: its self-signed certificate and its private key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key: PKCS8, unencrypted PEM."""
        return _key_pem(self.key)


@dataclass(frozen=True)
class Issued:
    """A leaf certificate issued by an :class:`Authority`, and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key: PKCS8, unencrypted PEM."""
        return _key_pem(self.key)

    @property
    def serial(self) -> int:
        """The certificate's serial number (what a CRL lists)."""
        return self.cert.serial_number


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- making certificates --------------------------------------------------------------------

def make_ca(common_name: str = "raftkv CA", *, days: int = 3650) -> Authority:
    """A new self-signed CA valid for ``days`` from now; it may sign leaves, not other CAs."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, None, None)
    name = _subject(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_cert_sign=True,
                                      crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Authority(cert, key)


def issue(ca: Authority, common_name: str, *, hosts: Sequence[str] = DEFAULT_HOSTS,
          server: bool = True, client: bool = True, days: int = 365,
          not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
    """A leaf certificate for ``common_name`` signed by ``ca``.

    ``hosts`` become its subjectAltNames: IP addresses (IPv4, IPv6, ``[::1]``) as IPAddress
    names, anything else as a DNSName (``*.example.com`` allowed). ``server`` and ``client``
    choose the extended key usages (serverAuth, clientAuth); a server certificate needs at
    least one host. It is valid from five minutes ago for ``days``; ``not_before`` and
    ``not_after`` override that (a ``not_after`` in the past makes an expired certificate).
    """
    usages = [oid for oid, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                      (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    if not usages:
        raise ConfigError(f"certificate {common_name!r}: give server=True, client=True or both")
    sans = _alt_names(hosts)
    if server and not sans:
        raise ConfigError(f"server certificate {common_name!r} needs at least one host "
                          "(an IP address or a DNS name) to be verified against")
    subject = _subject(common_name)
    start, end = _validity(days, not_before, not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(digital_signature=True, key_encipherment=True),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(_authority_key_id(ca), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, _algorithm(ca.key)), key)


def make_crl(ca: Authority, revoked: Iterable[int], *, days: int = 30) -> bytes:
    """A PEM certificate revocation list signed by ``ca`` that lists the serial numbers
    ``revoked``; its next update is ``days`` from now."""
    if days < 1:
        raise ConfigError(f"CRL validity days={days} must be at least 1")
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.cert.subject)
               .last_update(now - CLOCK_SKEW)
               .next_update(now + timedelta(days=days))
               .add_extension(_authority_key_id(ca), critical=False)
               # increases from one CRL to the next, as RFC 5280 asks
               .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False))
    for serial in dict.fromkeys(revoked):
        if isinstance(serial, bool) or not isinstance(serial, int) or serial < 1:
            raise ConfigError(f"cannot revoke serial number {serial!r}: serial numbers are "
                              "positive integers")
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now - CLOCK_SKEW).build())
    crl = builder.sign(ca.key, _algorithm(ca.key))
    return crl.public_bytes(serialization.Encoding.PEM)


def _subject(common_name: str) -> x509.Name:
    if not 1 <= len(common_name) <= 64:
        raise ConfigError(f"common name {common_name!r} must have 1 to 64 characters")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int, not_before: datetime | None,
              not_after: datetime | None) -> tuple[datetime, datetime]:
    """(not before, not after): from five minutes ago for ``days``, unless overridden; a
    ``not_after`` already past without a ``not_before`` starts ``days`` before it."""
    if days < 1:
        raise ConfigError(f"validity days={days} must be at least 1")
    now = datetime.now(UTC)
    after = None if not_after is None else _utc(not_after)
    if not_before is not None:
        before = _utc(not_before)
    elif after is not None and after <= now - CLOCK_SKEW:
        before = after - timedelta(days=days)
    else:
        before = now - CLOCK_SKEW
    if after is None:
        after = (now if not_before is None else before) + timedelta(days=days)
    if after <= before:
        raise ConfigError(f"not_after {after.isoformat()} must be later than not_before "
                          f"{before.isoformat()}")
    return before, after


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key_usage(*, digital_signature: bool = False, key_encipherment: bool = False,
               key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         encipher_only=False, decipher_only=False)


def _authority_key_id(ca: Authority) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # a CA made elsewhere
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _algorithm(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    """SHA-256, or None for the keys that hash on their own (Ed25519, Ed448)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """The subjectAltNames of ``hosts``, without duplicates, in their order."""
    if isinstance(hosts, str):  # a lone "localhost" would otherwise be nine hosts
        hosts = (hosts,)
    names: list[x509.GeneralName] = []
    for host in hosts:
        name: x509.GeneralName
        try:
            name = x509.IPAddress(ipaddress.ip_address(host.removeprefix("[").removesuffix("]")))
        except ValueError:
            name = x509.DNSName(_dns_name(host))
        if name not in names:
            names.append(name)
    return names


def _dns_name(host: str) -> str:
    labels = host.removesuffix(".").split(".")
    if labels[0] == "*" and len(labels) > 1:  # a wildcard stands for one leftmost label
        labels = labels[1:]
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(f"host {host!r} is neither an IP address nor a DNS name (letters, "
                          "digits, '-' and dots; '*.' in front for a wildcard)")
    return host.removesuffix(".")


# -- files ------------------------------------------------------------------------------------

def check_name(name: str, what: str = "name") -> str:
    """``name`` if it can name a certificate and its files (DIR/NAME.pem, DIR/NAME-key.pem),
    else a :class:`ConfigError` that says what is allowed."""
    if (not _NAME.fullmatch(name) or name.lower() in _RESERVED
            or name.endswith("-key")):
        raise ConfigError(f"{what} {name!r} cannot name a certificate: use 1 to 64 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit, not "
                          "ending in '-key' ('ca' and 'crl' are taken)")
    return name


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (a temporary file in the same
    directory, then ``os.replace``), creating the directory with mode 0700 if missing. An
    existing file is replaced, so it ends up 0600 whatever its mode was."""
    parent = path.parent
    try:
        parent.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    else:
        os.chmod(parent, 0o700)  # whatever the umask
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.chmod(path, 0o600)
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_cert(path: Path) -> x509.Certificate:
    """The PEM certificate in ``path``, or a one-line :class:`ConfigError` naming it."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; give the path of a PEM certificate") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); check the path and "
                          "its permissions") from None
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate; give a file such as "
                          "'raftkv certs' writes (-----BEGIN CERTIFICATE-----)") from None


def load_ca(directory: Path) -> Authority:
    """The CA in ``directory`` (``ca.pem`` and ``ca-key.pem``), or a one-line
    :class:`ConfigError` naming the file that is missing or unusable and the fix."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    make = f"make one with 'raftkv certs init --dir {directory}'"
    if not cert_path.exists():
        raise ConfigError(f"{cert_path} not found: no CA in {directory}; {make}")
    cert = load_cert(cert_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{key_path} not found: the CA's key is missing; put it back "
                          f"or {make} in another directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {key_path} ({exc.strerror or exc}); check its "
                          "permissions") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{key_path} is not an unencrypted PEM private key; decrypt it "
                          "(openssl pkey) or make a new CA") from None
    if not isinstance(key, _ISSUER_KEYS):
        raise ConfigError(f"{key_path} holds a {type(key).__name__}, which cannot sign "
                          "certificates; use an EC, RSA or Ed25519 key")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ConfigError(f"{key_path} is not the key of {cert_path}; put the matching pair "
                          "back or make a new CA")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ConfigError(f"{cert_path} is not a CA certificate (no basicConstraints CA:TRUE); "
                          "give the CA's certificate")
    return Authority(cert, key)


def _cluster_ca(directory: Path) -> tuple[Authority, bool]:
    """The CA in ``directory`` if both its files are there, else a new one: (CA, is new).
    Half a CA is refused rather than overwritten."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    has_cert, has_key = cert_path.exists(), key_path.exists()
    if has_cert and has_key:
        return load_ca(directory), False
    if has_key:
        raise ConfigError(f"{key_path} exists without {cert_path}; refusing to overwrite the "
                          f"CA key: put {CA_CERT} back, or remove {key_path} to make a new CA")
    if has_cert:
        raise ConfigError(f"{cert_path} exists without its key {key_path}; refusing to replace "
                          f"the CA: put {CA_KEY} back, or remove {cert_path} to make a new CA")
    return make_ca(), True


def init_cluster(directory: Path, members: Sequence[str], *,
                 hosts: Sequence[str] = DEFAULT_HOSTS, clients: Sequence[str] = ("client",),
                 days: int = 365) -> dict[str, Path]:
    """Write a cluster's certificates into ``directory``; return {logical name: path}.

    The logical names are the files' stems: ``ca``, ``ca-key``, then ``M``, ``M-key`` for
    each member and ``C``, ``C-key`` for each client. Members get serverAuth + clientAuth
    and ``hosts`` as subjectAltNames (one certificate for the client and the peer
    listener); clients get clientAuth only. When ``ca.pem`` and ``ca-key.pem`` are already
    there that CA is reused and not rewritten, so running this again adds members or
    clients (the certificates it names are issued anew). Everything is checked and issued
    before the first file is written.
    """
    names = [check_name(m, "member name") for m in members]
    names += [check_name(c, "client name") for c in clients]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{name!r} is named twice among the members and clients; "
                              "give each certificate its own name")
        seen.add(name)
    ca, new_ca = _cluster_ca(directory)
    issued = {m: issue(ca, m, hosts=hosts, days=days) for m in members}
    issued |= {c: issue(ca, c, hosts=(), server=False, days=days) for c in clients}
    paths = {"ca": directory / CA_CERT, "ca-key": directory / CA_KEY}
    if new_ca:
        write_file(paths["ca-key"], ca.key_pem())
        write_file(paths["ca"], ca.cert_pem())
    for name, leaf in issued.items():
        paths[name], paths[f"{name}-key"] = directory / f"{name}.pem", directory / f"{name}-key.pem"
        write_file(paths[f"{name}-key"], leaf.key_pem())
        write_file(paths[name], leaf.cert_pem())
    return paths
