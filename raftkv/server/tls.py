"""The one TLS configuration builder: every listener's TLS, and the peer transport's.

etcd's security flags (``--cert-file``, ``--trusted-ca-file``, ``--client-cert-auth``,
``--client-crl-file``, ``--peer-cert-allowed-cn``, ``--cipher-suites``,
``--tls-min-version`` ...) are read into one :class:`TLSInfo` per side (client, peer) and
one :class:`TLSPolicy` shared by both. :class:`ServerTLS` turns a side into what a listener
needs, and nothing else builds TLS settings, so a check (CA, CRL, allowed CN or hostname,
protocol versions, ciphers) can never be on for one listener and off for another:

* :meth:`ServerTLS.context` is the ``ssl.SSLContext`` a listener hands to the next
  handshake. It is rebuilt when one of its files changes on disk (compared by inode, size
  and modification time at every new connection), so a rotated certificate or CRL is used
  from the next handshake on, without a restart; a half-written rotation that does not load
  keeps the previous context and logs why.
* Client certificates are verified by OpenSSL during the handshake: the trusted CA, the
  validity period and, with a CRL file, revocation (``VERIFY_CRL_CHECK_LEAF``: the leaf must
  be covered by a CRL of its issuer, which is stricter than etcd for a CA the CRL file does
  not cover).
* What OpenSSL cannot check during the handshake is checked by :meth:`ServerTLS.check_peer`
  on the verified certificate, once per connection, before a single byte reaches the gRPC
  server: the allowed CNs (exact match), the allowed hostnames (SAN match, ``*.`` wildcards
  as Go's ``VerifyHostname``) and, on the peer side, that a certificate with IP SANs is
  presented from one of those IPs (etcd 3.2+).
* :meth:`ServerTLS.channel_credentials` is the peer transport's client side: the peer CA
  verifies the member it dials, and this member's peer certificate identifies it there.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from raftkv.errors import ConfigError

__all__ = ["CIPHER_SUITES", "TLS_VERSIONS", "ServerTLS", "TLSInfo", "TLSPolicy",
           "hostname_matches"]

log = logging.getLogger("raftkv.server.tls")

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS1.2": ssl.TLSVersion.TLSv1_2,
    "TLS1.3": ssl.TLSVersion.TLSv1_3,
}

#: etcd's (Go's) names for the TLS 1.2 cipher suites -> OpenSSL's names. TLS 1.3 suites are
#: not configurable (nor are they in Go).
CIPHER_SUITES: dict[str, str] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
}


@dataclass(frozen=True, slots=True)
class TLSPolicy:
    """What both sides share: ``--cipher-suites``, ``--tls-min-version``, ``--tls-max-version``."""

    cipher_suites: tuple[str, ...] = ()
    min_version: str = "TLS1.2"
    max_version: str = ""

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) for a bad value or combination."""
        for flag, value in (("--tls-min-version", self.min_version),
                            ("--tls-max-version", self.max_version)):
            if value and value not in TLS_VERSIONS:
                raise ConfigError(f"{flag}={value!r} is not a TLS version this server "
                                  f"supports; use TLS1.2 or TLS1.3")
        low = TLS_VERSIONS[self.min_version or "TLS1.2"]
        high = TLS_VERSIONS[self.max_version or "TLS1.3"]
        if low > high:
            raise ConfigError(f"min version ({self.min_version}) is greater than max version "
                              f"({self.max_version}); lower --tls-min-version or raise "
                              f"--tls-max-version")
        unknown = [c for c in self.cipher_suites if c not in CIPHER_SUITES]
        if unknown:
            raise ConfigError(f"--cipher-suites: unexpected TLS cipher suite {unknown[0]!r}; "
                              f"use Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        if self.cipher_suites and low == ssl.TLSVersion.TLSv1_3:
            raise ConfigError("cipher suites cannot be configured when only TLS1.3 is "
                              "enabled; drop --cipher-suites or lower --tls-min-version")

    def apply(self, ctx: ssl.SSLContext) -> None:
        ctx.minimum_version = TLS_VERSIONS[self.min_version or "TLS1.2"]
        ctx.maximum_version = TLS_VERSIONS[self.max_version or "TLS1.3"]
        if self.cipher_suites:
            ctx.set_ciphers(":".join(CIPHER_SUITES[c] for c in self.cipher_suites))


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """One side's TLS files and checks, etcd's ``transport.TLSInfo``.

    ``side`` is ``"client"`` or ``"peer"``: it names the flags in error messages.
    """

    side: str = "client"
    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    crl_file: str = ""
    allowed_cns: tuple[str, ...] = ()
    allowed_hostnames: tuple[str, ...] = ()

    def flag(self, name: str) -> str:
        """The flag of ``name`` on this side: ``cert-file`` -> ``--peer-cert-file``."""
        if self.side == "peer":
            return f"--peer-{name}"
        if name == "crl-file":
            return "--client-crl-file"
        if name == "cert-allowed-hostname":
            return "--client-cert-allowed-hostname"
        return f"--{name}"

    @property
    def has_cert(self) -> bool:
        return bool(self.cert_file or self.key_file)

    @property
    def requires_client_cert(self) -> bool:
        """etcd: a trusted CA file alone already requires and verifies client certificates."""
        return self.client_cert_auth or bool(self.trusted_ca_file)

    @property
    def is_empty(self) -> bool:
        return not (self.has_cert or self.trusted_ca_file or self.client_cert_auth
                    or self.crl_file or self.allowed_cns or self.allowed_hostnames)

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) for a missing half or a bad combination.

        Files are loaded (and so checked) by :class:`ServerTLS`."""
        cert, key = self.flag("cert-file"), self.flag("key-file")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(f"{cert} and {key} go together; give both or neither")
        if self.allowed_cns and self.allowed_hostnames:
            raise ConfigError(f"cannot set both {self.flag('cert-allowed-cn')} and "
                              f"{self.flag('cert-allowed-hostname')}; keep one")
        if self.client_cert_auth and not self.trusted_ca_file:
            raise ConfigError(f"{self.flag('client-cert-auth')} needs "
                              f"{self.flag('trusted-ca-file')} (the CA that signs the "
                              "certificates to accept)")
        checks = self.crl_file or self.allowed_cns or self.allowed_hostnames
        if checks and not self.requires_client_cert:
            raise ConfigError(f"{self._check_flag()} checks client certificates, which are "
                              f"only asked for with {self.flag('trusted-ca-file')}; give it")
        if (self.trusted_ca_file or checks) and not self.has_cert:
            raise ConfigError(f"{self.flag('trusted-ca-file')} and the certificate checks "
                              f"need {cert} and {key} (this member's own certificate)")

    def _check_flag(self) -> str:
        if self.crl_file:
            return self.flag("crl-file")
        if self.allowed_cns:
            return self.flag("cert-allowed-cn")
        return self.flag("cert-allowed-hostname")


def _signature(paths: Sequence[str]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((0, 0, 0))
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _read(path: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path} ({exc.strerror or exc}); check the "
                          "path and its permissions") from None


def _no_password() -> bytes:
    raise ConfigError("the key is encrypted; give an unencrypted key (as etcd requires)")


class ServerTLS:
    """The TLS of one side (client or peer) for every listener of that side; see the
    module docstring. Raises :class:`ConfigError` at construction when the files do not
    load, so a member with a bad certificate does not start."""

    def __init__(self, info: TLSInfo, policy: TLSPolicy) -> None:
        info.validate()
        policy.validate()
        self.info = info
        self.policy = policy
        self._files = tuple(p for p in (info.cert_file, info.key_file, info.trusted_ca_file,
                                        info.crl_file) if p)
        self._seen = _signature(self._files)
        self._context = self._build()

    def context(self) -> ssl.SSLContext:
        """The context for the next handshake (rebuilt if a file changed)."""
        now = _signature(self._files)
        if now != self._seen:
            self._seen = now
            try:
                self._context = self._build()
            except ConfigError as exc:
                log.warning("%s TLS files changed but do not load (%s); still serving the "
                            "previous certificate", self.info.side, exc)
            else:
                log.info("%s TLS files changed: new connections use them", self.info.side)
        return self._context

    def _build(self) -> ssl.SSLContext:
        info = self.info
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.policy.apply(ctx)
        try:
            ctx.load_cert_chain(info.cert_file, info.key_file, password=_no_password)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{info.flag('cert-file')}/{info.flag('key-file')}: cannot load "
                              f"{info.cert_file} with {info.key_file} ({_why(exc)}); give a "
                              "PEM certificate and its unencrypted PEM key") from None
        if info.requires_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._load(ctx, info.trusted_ca_file, "trusted-ca-file", "CA certificates")
            if info.crl_file:
                self._load(ctx, info.crl_file, "crl-file", "a CRL")
                ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def _load(self, ctx: ssl.SSLContext, path: str, name: str, what: str) -> None:
        before = ctx.cert_store_stats()
        try:
            ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{self.info.flag(name)}: cannot load {path} ({_why(exc)}); give "
                              f"a PEM file of {what}") from None
        if ctx.cert_store_stats() == before:
            raise ConfigError(f"{self.info.flag(name)}: {path} holds no PEM {what}")

    def check_peer(self, cert: dict[str, object], remote_ip: str) -> str | None:
        """Why the verified certificate ``cert`` (``SSLObject.getpeercert()``) presented from
        ``remote_ip`` is refused, or None when it is accepted."""
        info = self.info
        if not info.requires_client_cert:
            return None
        if info.allowed_cns:
            cn = common_name(cert)
            if cn not in info.allowed_cns:
                return (f"CommonName authentication failed: {cn!r} is not in "
                        f"{info.flag('cert-allowed-cn')}")
        if info.allowed_hostnames and not any(hostname_matches(cert, h)
                                              for h in info.allowed_hostnames):
            return (f"certificate is not valid for any of "
                    f"{info.flag('cert-allowed-hostname')}={','.join(info.allowed_hostnames)}")
        if info.side == "peer":
            ips = _sans(cert, "IP Address")
            if ips and not any(_same_ip(ip, remote_ip) for ip in ips):
                return (f"peer certificate IP SANs {','.join(ips)} do not include the "
                        f"remote address {remote_ip}")
        return None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials to dial a member of this side (read afresh: rotation applies)."""
        info = self.info
        ca = _read(info.trusted_ca_file, info.flag("trusted-ca-file")) \
            if info.trusted_ca_file else None
        key = _read(info.key_file, info.flag("key-file")) if info.key_file else None
        cert = _read(info.cert_file, info.flag("cert-file")) if info.cert_file else None
        return grpc.ssl_channel_credentials(ca, key, cert)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def common_name(cert: dict[str, object]) -> str:
    """The subject CN of a decoded certificate, ``""`` if it has none."""
    for rdn in cert.get("subject", ()):  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def _sans(cert: dict[str, object], kind: str) -> list[str]:
    return [str(v) for k, v in cert.get("subjectAltName", ()) if k == kind]  # type: ignore[attr-defined]


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip()) == ipaddress.ip_address(b)
    except ValueError:
        return False


def hostname_matches(cert: dict[str, object], host: str) -> bool:
    """Go's ``x509.VerifyHostname``: an IP matches an IP SAN; a name matches a DNS SAN,
    case-insensitively, where ``*.`` matches exactly one leftmost label. The CN is not
    used (Go stopped using it in 1.15)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return any(_same_ip(ip, host) for ip in _sans(cert, "IP Address"))
    want = host.lower().rstrip(".")
    for name in _sans(cert, "DNS"):
        pattern = name.lower().rstrip(".")
        if pattern == want:
            return True
        if pattern.startswith("*.") and "." in want and want.split(".", 1)[1] == pattern[2:]:
            return True
    return False
