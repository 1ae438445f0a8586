"""Run a raftkv member inside your own process.

From asyncio code, the member shares the caller's event loop::

    import raftkv.embed

    async with raftkv.embed.start_node(data_dir="state/n1") as node:
        client = node.client()                  # in-process: no sockets, no serialization
        await client.put("config/mode", "active")
        print(node.endpoints)                   # other processes use gRPC (etcdctl too)

From synchronous code, the member runs on a background thread with its own event loop::

    with raftkv.embed.start_node_sync(data_dir="state/n1") as node:
        node.client().put("config/mode", "active")

A member is single-member by default. To join or form a cluster, pass etcd's flags as
keyword arguments (``name``, ``listen_peer_urls``, ``initial_cluster``,
``initial_cluster_state``, ...; see :class:`raftkv.server.config.ServerConfig`). When the
client or peer URLs are not given, free loopback ports are chosen on the first start and
remembered in the data directory (``embed.json``), so a restarted member keeps its identity.
TLS takes etcd's flags too (``cert_file``, ``key_file``, ``trusted_ca_file``,
``client_cert_auth``, ``peer_cert_file``, ...); with a certificate and no URL given, that
side listens on ``https://``. The in-process client needs no certificate.

``node.client()`` reaches the member through :class:`~raftkv.server.local_channel.LocalChannel`:
the same handlers and validation as the network server, minus HTTP/2 and protobuf encoding.
It must be used on the member's event loop (``start_node``) or through the synchronous
facade (``start_node_sync``), which hops onto that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from raftkv.errors import ConfigError, UnavailableError
from raftkv.server import collector
from raftkv.server.app import Server, spec_from_config
from raftkv.server.config import ServerConfig, coerce_options
from raftkv.server.local_channel import LocalChannel
from raftkv.wire.pb.etcdserverpb import rpc_pb2_grpc
from raftkv.wire.pb.v3electionpb import v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2_grpc

if TYPE_CHECKING:
    from raftkv.client import Client, SyncClient

__all__ = ["EmbeddedNode", "SyncEmbeddedNode", "start_node", "start_node_sync"]

T = TypeVar("T")
URLS_FILE = "embed.json"


class EmbeddedNode:
    """A running member in this process (see the module docstring)."""

    def __init__(self, server: Server, config: ServerConfig) -> None:
        self._server = server
        self.config = config
        assert server.local is not None
        self.channel = LocalChannel(server.local)
        """The in-process channel; generated stubs and :class:`raftkv.client.Client` take it."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def member_id(self) -> int:
        return self.config.member_id

    @property
    def cluster_id(self) -> int:
        return self._server.cluster_id

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of each client URL, for gRPC clients in other processes."""
        return [e.address for e in self.config.listen_client_endpoints]

    @property
    def client_urls(self) -> list[str]:
        """``http(s)://host:port`` of each client URL (``https://``: TLS)."""
        return [e.url for e in self.config.listen_client_endpoints]

    @property
    def is_leader(self) -> bool:
        driver = self._server.driver
        return driver is not None and driver.is_leader

    @property
    def leader_id(self) -> int:
        """The member id of the current leader as this member knows it (0: none)."""
        driver = self._server.driver
        return driver.lead if driver is not None else 0

    def client(self, **options: Any) -> Client:
        """A :class:`raftkv.client.Client` on the in-process channel (use it on this event
        loop). ``options`` are :meth:`Client.from_transport`'s (``timeout``, ``retry``)."""
        from raftkv.client import Client

        return Client.from_transport(_LocalTransport(self.channel), **options)

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Return once a leader is known and a linearizable read passes through this member.

        Raises:
            UnavailableError: not within ``timeout_s``.
        """
        driver = self._server.driver
        assert driver is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if driver.fatal is not None:
                raise UnavailableError(f"member {self.name} stopped: {driver.fatal}")
            if driver.lead != 0:
                try:
                    left = max(0.1, deadline - loop.time())
                    await asyncio.wait_for(driver.read_barrier(), left)
                    return
                except (TimeoutError, UnavailableError):
                    pass
            if loop.time() >= deadline:
                raise UnavailableError(f"member {self.name} found no leader in {timeout_s} s")
            await asyncio.sleep(0.02)

    async def stop(self, grace_s: float = 2.0) -> None:
        """Finish in-flight requests (up to ``grace_s``), then stop the member."""
        await self.channel.close()
        await self._server.stop(grace_s)


class _LocalTransport:
    """The client's transport seam (:mod:`raftkv.client._transport`) on a LocalChannel."""

    def __init__(self, channel: LocalChannel) -> None:
        self.kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
        self.watch = rpc_pb2_grpc.WatchStub(channel)  # type: ignore[no-untyped-call]
        self.lease = rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]
        self.cluster = rpc_pb2_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call]
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(channel)  # type: ignore[no-untyped-call]
        self.lock = v3lock_pb2_grpc.LockStub(channel)  # type: ignore[no-untyped-call]
        self.election = v3election_pb2_grpc.ElectionStub(channel)  # type: ignore[no-untyped-call]
        self.auth = rpc_pb2_grpc.AuthStub(channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """The channel belongs to the member; closing a client leaves it open."""


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _remembered_urls(data_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Fill in free loopback client / peer URLs, chosen once and kept in the data dir."""
    path = data_dir / URLS_FILE
    saved: dict[str, str] = {}
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); delete it to choose new "
                              "ports, or pass listen_client_urls and listen_peer_urls") from None
    out = dict(options)
    for key, cert in (("listen_client_urls", "cert_file"), ("listen_peer_urls", "peer_cert_file")):
        if key not in out:  # https:// when the side has a certificate
            scheme = "https" if options.get(cert) else "http"
            port = saved.get(key, "").rpartition(":")[2] or str(_free_port())
            out[key] = f"{scheme}://127.0.0.1:{port}"
    if any(saved.get(k) != out[k] for k in ("listen_client_urls", "listen_peer_urls")
           if k not in options):
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: out[k] for k in ("listen_client_urls",
                                                        "listen_peer_urls")}) + "\n")
    return out


def _config(data_dir: str | Path, options: dict[str, Any]) -> ServerConfig:
    path = Path(data_dir)
    full = _remembered_urls(path, options)
    typed = coerce_options({"data_dir": str(path), **full}, source="start_node")
    cfg = ServerConfig(**typed)  # type: ignore[arg-type]
    cfg.validate()
    return cfg


@asynccontextmanager
async def start_node(data_dir: str | Path, *, ready_timeout_s: float = 30.0,
                     tune_gc: bool = True, **options: Any) -> AsyncIterator[EmbeddedNode]:
    """Start a member on the running event loop; stop it when the block exits.

    Args:
        data_dir: the member's data directory (created if missing).
        ready_timeout_s: how long to wait for a leader before giving up.
        tune_gc: raise the process's garbage-collector thresholds for a member's load
            (:func:`raftkv.server.collector.relax`: young generation 700 -> 50,000
            allocations; never lowers a higher setting). ``False`` leaves them as they are.
        **options: ``raftkv serve`` flags with underscores for dashes (``name``,
            ``initial_cluster`` as ``"n1=url,..."`` or a dict, ``listen_client_urls``,
            ``heartbeat_interval`` in ms, ``election_timeout`` in ms, ...).

    Raises:
        ConfigError: an option or the data directory cannot be used (names which).
        UnavailableError: no leader within ``ready_timeout_s`` (a member joining a cluster
            whose quorum is down).
    """
    cfg = _config(data_dir, options)
    server = Server(spec_from_config(cfg))
    if tune_gc:
        collector.relax()
    try:
        await server.start()
    except BaseException:
        await server.stop(0)
        raise
    node = EmbeddedNode(server, cfg)
    try:
        await node.wait_ready(ready_timeout_s)
        yield node
    finally:
        await node.stop()


class SyncEmbeddedNode:
    """An :class:`EmbeddedNode` driven from synchronous code (see :func:`start_node_sync`)."""

    def __init__(self, node: EmbeddedNode, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.loop = loop

    def __getattr__(self, name: str) -> Any:  # name, member_id, endpoints, is_leader, ...
        return getattr(self.node, name)

    def run(self, awaitable: Awaitable[T], timeout_s: float | None = None) -> T:
        """Await ``awaitable`` (a coroutine, or a stub call on :attr:`channel`) on the
        member's event loop and return its result."""
        async def wait() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self.loop).result(timeout_s)

    def client(self, **options: Any) -> SyncClient:
        """A synchronous client on the in-process channel (calls hop onto the member's loop)."""
        from raftkv.client import SyncClient

        return SyncClient.from_client_factory(lambda: self.node.client(**options),
                                              loop=self.loop)


@contextmanager
def start_node_sync(data_dir: str | Path, **options: Any) -> Iterator[SyncEmbeddedNode]:
    """:func:`start_node` for synchronous code: the member runs on a background thread.

    The block gets a :class:`SyncEmbeddedNode`; leaving the block stops the member and the
    thread. Errors from starting (``ConfigError``, ``UnavailableError``) are raised here.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="raftkv-embed", daemon=True)
    thread.start()
    ready, stop = threading.Event(), threading.Event()
    holder: list[EmbeddedNode] = []

    async def run() -> None:
        async with start_node(data_dir, **options) as node:
            holder.append(node)
            ready.set()
            await loop.run_in_executor(None, stop.wait)

    future = asyncio.run_coroutine_threadsafe(run(), loop)
    try:
        while not ready.wait(0.05):
            if future.done():
                future.result()  # raises the start-up error
        yield SyncEmbeddedNode(holder[0], loop)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            future.result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
