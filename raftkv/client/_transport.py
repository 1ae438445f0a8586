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
* ``async close() -> None``.

:class:`GrpcTransport` implements it over real gRPC channels with several endpoints; an
in-process transport (the embedding API) implements it by calling the servicers directly.
"""

from __future__ import annotations

import itertools
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


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings for :class:`GrpcTransport` (PEM file paths).

    Attributes:
        ca_file: trusted CA certificates; ``None`` uses the system roots.
        cert_file: client certificate for mutual TLS (with ``key_file``).
        key_file: the client certificate's private key.
        server_name: override the name checked in the server certificate.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise ConfigError(f"cannot read TLS file {path!r}: {exc.strerror}") from None

        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("TLS: give both cert_file and key_file, or neither")
        return grpc.ssl_channel_credentials(read(self.ca_file), read(self.key_file),
                                            read(self.cert_file))


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
        self._creds = tls.credentials() if tls is not None else None
        self._options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                         ("grpc.max_send_message_length", 16 * 1024 * 1024),
                         ("grpc.initial_reconnect_backoff_ms", 100),
                         ("grpc.max_reconnect_backoff_ms", 1000), *options]
        if tls is not None and tls.server_name:
            self._options.append(("grpc.ssl_target_name_override", tls.server_name))
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, _Stubs] = {}
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
            if self._creds is not None:
                ch = grpc.aio.secure_channel(ep, self._creds, options=self._options)
            else:
                ch = grpc.aio.insecure_channel(ep, options=self._options)
            self._channels[ep] = ch
            stubs = self._stubs[ep] = _Stubs(ch)
        return stubs

    def failover(self, generation: int) -> None:
        """Move to the next member, unless another failed call already moved us."""
        if generation != self.generation or len(self.endpoints) == 1:
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

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._stubs.clear()
