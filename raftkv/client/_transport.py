"""The transport seam: the one object through which the client makes every call.

:class:`Transport` is what :class:`raftkv.client.Client` needs: seven attributes ``kv``,
``watch``, ``lease``, ``lock``, ``election``, ``cluster`` and ``maintenance`` with the same
call shape as the generated ``grpc.aio`` stubs of :mod:`raftkv.wire.pb`:

* unary: ``await transport.kv.Range(request, timeout=seconds_or_None, metadata=pairs)``
  returns the response message, or raises a :class:`grpc.RpcError` (``grpc.aio.AioRpcError``)
  whose ``code()`` and ``details()`` are the status etcd would send;
* streaming: ``call = transport.watch.Watch(request_async_iterator)`` returns an object that
  is async-iterable over the responses and has ``cancel()``; likewise
  ``lease.LeaseKeepAlive(...)``; ``election.Observe(request)`` and
  ``maintenance.Snapshot(request)`` take one request and are async-iterable.

Besides those, a transport *may* provide (the client uses them when present):

* ``generation: int`` and ``failover(generation) -> None``: a call failed with UNAVAILABLE
  or a lost connection on the member of that generation; move to another member;
* ``deduplicates: bool | None``: ``True`` if the server de-duplicates writes carrying the
  ``raftkv-request-id`` metadata (so retrying them is safe); ``None`` lets the client probe;
* ``auth``: the ``etcdserverpb.Auth`` stub (needed by a client with a ``username`` and by
  the Auth API methods). A client that has a token passes ``metadata=(("token", ...),)``
  to every unary call and to stream calls too (``watch.Watch(requests, metadata=...)``);
* ``async close() -> None``.

:class:`GrpcTransport` implements it over real gRPC channels with several endpoints; an
in-process transport (the embedding API) implements it by calling the servicers directly.
"""

from __future__ import annotations

import itertools
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import grpc

from raftkv.errors import ConfigError
from raftkv.wire.pb.etcdserverpb import rpc_pb2_grpc
from raftkv.wire.pb.v3electionpb import v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2_grpc

REQUEST_ID_KEY = "raftkv-request-id"
"""gRPC metadata key of a write's request id, ``<client id hex>-<seq>``."""
PROBE_KEY = "raftkv-probe"
"""Sent (value ``dedup``) on a Range to ask whether the server de-duplicates writes."""
DEDUP_KEY = "raftkv-dedup"
"""Trailing metadata a de-duplicating server sends back to a probe (value ``1``)."""


@runtime_checkable
class Transport(Protocol):
    """Seven stub-shaped attributes (see the module docstring)."""

    kv: Any
    watch: Any
    lease: Any
    lock: Any
    election: Any
    cluster: Any
    maintenance: Any


@runtime_checkable
class Failover(Protocol):
    """The optional failover part of a transport."""

    @property
    def generation(self) -> int: ...

    def failover(self, generation: int) -> None: ...


PEEK_TIMEOUT_S = 3.0
"""How long :attr:`TLS.insecure_skip_verify` waits for a member's TLS handshake."""


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {path!r}: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings for :class:`GrpcTransport` (PEM file paths).

    Attributes:
        ca_file: trusted CA certificates; ``None`` uses the system roots.
        cert_file: client certificate for mutual TLS (with ``key_file``).
        key_file: the client certificate's private key.
        server_name: override the name checked in the server certificate.
        insecure_skip_verify: encrypt, but do not verify the server's certificate (etcdctl's
            ``--insecure-skip-tls-verify``): anyone who can intercept the connection can
            impersonate the server. gRPC has no switch for it, so before dialing a member the
            transport makes one TLS handshake to it without verification (blocking, up to
            :data:`PEEK_TIMEOUT_S`), then trusts exactly the certificate it presented (its
            validity period is still checked) under a name it carries; ``ca_file`` and
            ``server_name`` are not used.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    def credentials(self) -> grpc.ChannelCredentials:
        """Verifying credentials: the server's chain against ``ca_file`` (or the system
        roots), and the client certificate when given."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("TLS: give both cert_file and key_file, or neither")
        return grpc.ssl_channel_credentials(_read(self.ca_file), _read(self.key_file),
                                            _read(self.cert_file))

    def pinned(self, endpoint: str,
               timeout_s: float = PEEK_TIMEOUT_S) -> tuple[grpc.ChannelCredentials, str | None]:
        """For :attr:`insecure_skip_verify`: credentials that trust exactly the certificate
        ``endpoint`` presents now, and a name that certificate carries (to check it against
        with ``grpc.ssl_target_name_override``).

        BoringSSL (gRPC) accepts a leaf certificate given as the only trusted root as the
        whole chain, so its issuer is never looked for.

        Raises:
            OSError: no TLS handshake with ``endpoint`` (``ssl.SSLError`` included).
        """
        der = peek_certificate(endpoint, self, timeout_s)
        root = ssl.DER_cert_to_PEM_cert(der).encode()
        creds = grpc.ssl_channel_credentials(root, _read(self.key_file), _read(self.cert_file))
        return creds, certificate_name(der)


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def peek_certificate(endpoint: str, tls: TLS, timeout_s: float = PEEK_TIMEOUT_S) -> bytes:
    """The DER certificate ``endpoint`` presents in a TLS handshake made *without*
    verifying it (ALPN ``h2``; the client certificate of ``tls`` when it has one, which a
    TLS 1.2 server requiring client certificates needs before it completes the handshake).

    Raises:
        OSError: no connection or no handshake (``ssl.SSLError`` included).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    host, port = _host_port(endpoint)
    with socket.create_connection((host, port), timeout=timeout_s) as sock, \
            ctx.wrap_socket(sock, server_hostname=tls.server_name or host) as conn:
        der = conn.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{endpoint} presented no certificate")
    return der


def certificate_name(der: bytes) -> str | None:
    """A name the certificate is valid for: its first DNS name (a wildcard's with a label
    put in), else its first IP address, else its common name; ``None`` if it has none."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        dns, ips = [], []
    else:
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    if dns:
        return "skip-verify." + dns[0][2:] if dns[0].startswith("*.") else dns[0]
    if ips:
        return str(ips[0])
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def parse_endpoints(endpoints: str | Sequence[str]) -> tuple[list[str], bool]:
    """``host:port`` targets from ``"a:1,b:2"``, a list, or URLs; and whether any was
    ``https://`` (which turns TLS on)."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    targets, secure = [], False
    for raw in items:
        ep = raw.strip()
        if not ep:
            continue
        if ep.startswith("https://"):
            secure, ep = True, ep[len("https://"):]
        elif ep.startswith("http://"):
            ep = ep[len("http://"):]
        elif "://" in ep:
            raise ConfigError(f"endpoint {raw!r}: use host:port, http://host:port or https://")
        ep = ep.rstrip("/")
        if ":" not in ep:
            raise ConfigError(f"endpoint {raw!r} has no port: use host:port, e.g. {ep}:2379")
        targets.append(ep)
    if not targets:
        raise ConfigError("no endpoints given: pass e.g. '127.0.0.1:2379'")
    return targets, secure


class _Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        self.watch = rpc_pb2_grpc.WatchStub(channel)  # type: ignore[no-untyped-call]
        self.lease = rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]
        self.cluster = rpc_pb2_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call]
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call]
        self.lock = v3lock_pb2_grpc.LockStub(channel)  # type: ignore[no-untyped-call]
        self.election = v3election_pb2_grpc.ElectionStub(channel)  # type: ignore[no-untyped-call]
        self.auth = rpc_pb2_grpc.AuthStub(channel)  # type: ignore[no-untyped-call]


class GrpcTransport:
    """:class:`Transport` over ``grpc.aio`` channels to several members.

    Sticky: every call goes to the current member until a call fails with UNAVAILABLE or a
    lost connection and the client calls :meth:`failover`, which moves to the next member
    (round robin). Channels are created lazily, one per member, and kept open (streams on
    the previous member end on their own).
    """

    def __init__(self, endpoints: str | Sequence[str], *, tls: TLS | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> None:
        self.endpoints, secure = parse_endpoints(endpoints)
        if secure and tls is None:
            tls = TLS()
        self._tls = tls
        self._creds = tls.credentials() if tls is not None else None  # checks the files
        self._base_options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                              ("grpc.max_send_message_length", 16 * 1024 * 1024),
                              ("grpc.initial_reconnect_backoff_ms", 100),
                              ("grpc.max_reconnect_backoff_ms", 1000), *options]
        self._options = list(self._base_options)
        if tls is not None and tls.server_name and not tls.insecure_skip_verify:
            self._options.append(("grpc.ssl_target_name_override", tls.server_name))
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, _Stubs] = {}
        self._unpinned: set[str] = set()  # skip-verify endpoints whose handshake failed
        self._retired: list[grpc.aio.Channel] = []
        self._current = 0
        self._generation = itertools.count()
        self.generation = next(self._generation)
        self.deduplicates: bool | None = None

    @property
    def endpoint(self) -> str:
        """The member calls go to now."""
        return self.endpoints[self._current]

    def _get(self) -> _Stubs:
        ep = self.endpoint
        stubs = self._stubs.get(ep)
        if stubs is None:
            ch = self._dial(ep)
            self._channels[ep] = ch
            stubs = self._stubs[ep] = _Stubs(ch)
        return stubs

    def _dial(self, ep: str) -> grpc.aio.Channel:
        if self._creds is None:
            return grpc.aio.insecure_channel(ep, options=self._options)
        creds, options = self._creds, self._options
        if self._tls is not None and self._tls.insecure_skip_verify:
            try:
                creds, name = self._tls.pinned(ep)
            except OSError:  # down or not TLS: this channel fails; re-peek after failover
                self._unpinned.add(ep)
            else:
                self._unpinned.discard(ep)
                options = list(self._base_options)
                if name:
                    options.append(("grpc.ssl_target_name_override", name))
        return grpc.aio.secure_channel(ep, creds, options=options)

    def failover(self, generation: int) -> None:
        """Move to the next member, unless another failed call already moved us."""
        if generation != self.generation:
            return
        ep = self.endpoint
        if ep in self._unpinned:  # dial it afresh next time (a new handshake to peek at)
            self._unpinned.discard(ep)
            self._stubs.pop(ep, None)
            ch = self._channels.pop(ep, None)
            if ch is not None:
                self._retired.append(ch)
        if len(self.endpoints) == 1:
            return
        self._current = (self._current + 1) % len(self.endpoints)
        self.generation = next(self._generation)

    kv = property(lambda self: self._get().kv)
    watch = property(lambda self: self._get().watch)
    lease = property(lambda self: self._get().lease)
    lock = property(lambda self: self._get().lock)
    election = property(lambda self: self._get().election)
    cluster = property(lambda self: self._get().cluster)
    maintenance = property(lambda self: self._get().maintenance)
    auth = property(lambda self: self._get().auth)

    async def close(self) -> None:
        for ch in [*self._channels.values(), *self._retired]:
            await ch.close()
        self._channels.clear()
        self._retired.clear()
        self._stubs.clear()
