"""The composition root: open the data directory, build the state machine, the Raft node,
the driver, the transport and the gRPC servers; run until told to stop; stop gracefully."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import random
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from raftkv.errors import ConfigError
from raftkv.raft.config import Config
from raftkv.raft.rawnode import RawNode
from raftkv.raft.types import ConfState, HardState, Snapshot, SnapshotMeta
from raftkv.server import collector
from raftkv.server.audit import configure as audit_configure
from raftkv.server.auth import Gate, Tokens
from raftkv.server.config import Endpoint, ServerConfig, canonical_url, parse_url
from raftkv.server.lease_keeper import LeaseKeeper
from raftkv.server.local_channel import LocalServer
from raftkv.server.members import MemberInfo, MemberRegistry
from raftkv.server.node import DriverConfig, NodeDriver, split_snapshot_data
from raftkv.server.services.auth import AuthService
from raftkv.server.services.cluster import ClusterService, Membership
from raftkv.server.services.election import ElectionService
from raftkv.server.services.kv import Header, KVService
from raftkv.server.services.lease import LeaseService
from raftkv.server.services.lock import LockService, Recipes
from raftkv.server.services.maintenance import (
    NOSPACE,
    MaintenanceService,
    watch_quota,
)
from raftkv.server.services.watch import WatchService
from raftkv.server.tls import ServerTLS, TLSInfo, TLSPolicy
from raftkv.server.tls_front import HANDSHAKE_TIMEOUT_S, TLSFront
from raftkv.server.transport import (
    Dial,
    GrpcTransport,
    RaftService,
    ask_cluster_id,
    plain_dial,
    tls_dial,
)
from raftkv.server.watch_hub import WatchHub
from raftkv.state.machine import StateMachine
from raftkv.storage.errors import CorruptionError
from raftkv.storage.store import Identity, Store
from raftkv.wire.pb.etcdserverpb import rpc_pb2_grpc
from raftkv.wire.pb.raftpb import raft_pb2_grpc
from raftkv.wire.pb.v3electionpb import v3election_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2_grpc

log = logging.getLogger("raftkv.server")

GRPC_OVERHEAD = 512 * 1024

MAX_INFLIGHT_APPENDS = 2
"""Appends in flight to one follower (Raft's ``max_inflight_msgs``). etcd allows 512, but a
``grpc.aio`` stream message costs a member 0.1-0.3 ms of CPU: with two in flight the
entries proposed while they travel wait for an acknowledgement and leave together, so
under load there are fewer, larger appends (``bench put`` on 3 members, 64 in flight:
1,890-1,990 Puts/s with 256, 2,180-2,230 with 2). A lost append is resent after the next
heartbeat response, as with any window."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Everything one member needs to run, already validated and resolved to addresses."""

    name: str
    member_id: int
    cluster_id: int
    cluster_token: str
    data_dir: str
    client_addr: str
    peer_addr: str
    peers: dict[int, str]
    """Peer (Raft) URLs (or bare addresses) of every initial member, this one included."""
    new_cluster: bool = True
    tick_interval_s: float = 0.1
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    snapshot_count: int = 100_000
    snapshot_catchup_entries: int = 5_000
    max_request_bytes: int = 1_572_864
    request_timeout_s: float = 7.0
    extra_client_addrs: tuple[str, ...] = field(default=())
    client_urls: tuple[str, ...] = ()
    """Advertised client URLs, published in the member registry."""
    initial_members: tuple[tuple[int, str, str], ...] = ()
    """``(id, name, peer URL)`` of each member in ``--initial-cluster``."""
    quota_backend_bytes: int = 2 * 1024**3
    max_txn_ops: int = 128
    client_secure: tuple[bool, ...] = ()
    """Per client address (``client_addr``, then ``extra_client_addrs``): served over TLS."""
    peer_secure: bool = False
    """The peer listener is served over TLS."""
    client_tls: TLSInfo = field(default_factory=lambda: TLSInfo("client"))
    peer_tls: TLSInfo = field(default_factory=lambda: TLSInfo("peer"))
    tls_policy: TLSPolicy = field(default_factory=TLSPolicy)
    tls_handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    auth_token_ttl_s: int = 300
    bcrypt_cost: int = 10
    warnings: tuple[str, ...] = ()
    """Said in the log at every start (plaintext served beside certificates, say)."""


def client_server_options(max_request_bytes: int) -> list[tuple[str, int]]:
    """Options for the client-facing server: etcd's message limit, and a ping policy that
    tolerates grpc-go's keepalive pings (every ~10 s, even without calls) instead of
    answering GOAWAY too_many_pings, which kills idle watches and keep-alives."""
    return [
        ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD),
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


class Server:
    """One running member."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.store: Store | None = None
        self.driver: NodeDriver | None = None
        self.transport: GrpcTransport | None = None
        self._client_server: grpc.aio.Server | None = None
        self._peer_server: grpc.aio.Server | None = None
        self._driver_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.membership: Membership | None = None
        self.cluster_id = spec.cluster_id
        self._member_tasks: list[asyncio.Task[None]] = []
        self.local: LocalServer | None = None
        """The client handlers for in-process callers (:mod:`raftkv.embed`)."""
        self.client_ports: list[int] = []
        """The ports the client server listens on, in --listen-client-urls order."""
        self.client_tls: ServerTLS | None = None
        self.peer_tls: ServerTLS | None = None
        self.fronts: dict[str, TLSFront] = {}
        """The TLS front of each TLS side (``client``, ``peer``)."""
        self._socket_dir: str | None = None

    async def start(self) -> None:
        spec = self.spec
        self._build_tls()
        self.store = store = Store.open(spec.data_dir, sync_state=False)
        self.cluster_id = await self._resolve_cluster_id(store)
        store.claim(Identity(self.cluster_id, spec.member_id))
        sm = StateMachine(store.backend, max_txn_ops=spec.max_txn_ops)
        if store.log.last_index() == 0 and store.log.hard_state.is_empty() and spec.new_cluster:
            _bootstrap(store, sm, frozenset(spec.peers))
        recover_state(store, sm)
        cfg = Config(id=spec.member_id, rng=random.Random(os.urandom(8)),
                     election_ticks=spec.election_ticks, heartbeat_ticks=spec.heartbeat_ticks,
                     applied=sm.applied_index, max_size_per_msg=1 << 20,
                     max_inflight_msgs=MAX_INFLIGHT_APPENDS, check_quorum=True,
                     pre_vote=True)
        raw = RawNode(cfg, store.log)
        registry = _open_registry(spec)
        peers = {i.id: _peer_address(i) for i in registry.all() if i.peer_urls}
        self.transport = transport = GrpcTransport(spec.member_id, spec.cluster_token,
                                                   {**spec.peers, **peers}, self._peer_dial())
        dcfg = DriverConfig(spec.tick_interval_s, spec.request_timeout_s, spec.snapshot_count,
                            spec.snapshot_catchup_entries)
        self.driver = driver = NodeDriver(raw, store.log, sm, transport, dcfg)
        transport.on_unreachable = driver.report_unreachable
        transport.on_snapshot_status = driver.report_snapshot
        transport.snapshot_data = driver.snapshot_data
        self.membership = membership = Membership(
            registry, driver, transport, member_id=spec.member_id, name=spec.name,
            client_urls=spec.client_urls, on_removed=driver.stop)
        membership.attach()
        await self._start_grpc(driver)
        transport.start()
        self._driver_task = asyncio.create_task(driver.run(), name="raftkv-driver")
        self._member_tasks = [
            asyncio.create_task(membership.publish(), name="raftkv-publish"),
            asyncio.create_task(watch_quota(membership, self._db_size,
                                            spec.quota_backend_bytes), name="raftkv-quota")]
        keeper = LeaseKeeper(driver)
        driver.on_leadership.append(keeper.on_leadership)
        self._lease_task = asyncio.create_task(keeper.run(), name="raftkv-lease-keeper")
        log.info("member %s (%x) of cluster %x serving clients on %s, peers on %s",
                 spec.name, spec.member_id, self.cluster_id, spec.client_addr, spec.peer_addr)
        for warning in (*spec.warnings, *insecure_warnings(spec)):
            log.warning("%s", warning)

    async def _resolve_cluster_id(self, store: Store) -> int:
        """A member of a new cluster derives the cluster id from --initial-cluster; one that
        joins a running cluster adopts the id its members report (and keeps it)."""
        spec = self.spec
        known = store.identity()
        if known is not None and known.member_id == spec.member_id:
            # a member with data keeps its cluster, whatever --initial-cluster says now
            # (etcd ignores the bootstrap flags once the data dir exists)
            return known.cluster_id
        if spec.new_cluster:
            return spec.cluster_id
        try:
            return await ask_cluster_id(spec.member_id, spec.cluster_token, spec.peers,
                                        spec.request_timeout_s * 4, self._peer_dial())
        except TimeoutError as exc:
            raise ConfigError(f"--initial-cluster-state existing: {exc}; check "
                              f"--initial-cluster and that the cluster is running") from None

    async def _start_grpc(self, driver: NodeDriver) -> None:
        spec = self.spec
        # Peers ping every 10 s on their long-lived streams; tolerate it (the default
        # policy answers GOAWAY too_many_pings and drops the stream with what it carried).
        peer = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                        *client_server_options(64 << 20)[2:]])
        raft_pb2_grpc.add_RaftServicer_to_server(  # type: ignore[no-untyped-call]
            RaftService(spec.member_id, spec.cluster_token, driver.deliver, self.cluster_id),
            peer)
        await self._listen(peer, "peer", [(spec.peer_addr, spec.peer_secure)],
                           "--listen-peer-urls")
        membership = self.membership
        assert membership is not None
        assert self.store is not None
        gate = self._gate(driver)
        client = grpc.aio.server(options=client_server_options(spec.max_request_bytes))
        # in-process callers (raftkv.embed) reach the same handlers, through the same gate
        self.local = LocalServer()
        for add, servicer in self._client_services(driver, membership, gate.tokens):
            guarded = gate.guard(add, servicer)
            add(guarded, client)
            add(guarded, self.local)
        addrs = (spec.client_addr, *spec.extra_client_addrs)
        secure = spec.client_secure or (False,) * len(addrs)
        self.client_ports = await self._listen(client, "client", list(zip(addrs, secure,
                                                                          strict=True)),
                                               "--listen-client-urls")
        await peer.start()
        await client.start()
        self._peer_server, self._client_server = peer, client

    def _gate(self, driver: NodeDriver) -> Gate:
        """Authentication for the client port (a token, else the certificate's CN with
        --client-cert-auth)."""
        sm = driver.sm

        async def wait_applied(index: int) -> None:
            await driver.read_barrier()

        def cn_of(peer: str) -> str | None:
            front = self.fronts.get("client")
            ident = front.identity(peer) if front is not None else None
            return ident.common_name if ident is not None else None

        tokens = Tokens(lambda: sm.auth, lambda: sm.applied_index, wait_applied,
                        ttl_s=self.spec.auth_token_ttl_s)
        use_cn = self.spec.client_tls.client_cert_auth
        return Gate(lambda: sm.auth, tokens, cn_of if use_cn else None)

    def _client_services(self, driver: NodeDriver, membership: Membership, tokens: Tokens
                         ) -> list[tuple[Callable[[Any, Any], None], object]]:
        """The etcd API servicers, each with the generated function that registers it."""
        spec = self.spec
        assert self.store is not None
        header = Header(self.cluster_id, spec.member_id, driver)
        registry = membership.registry

        def no_space() -> bool:
            return registry.has_alarm(NOSPACE)

        recipes = Recipes(driver)
        hub = WatchHub(driver.sm)
        driver.on_events.append(hub.on_events)
        driver.on_apply.append(hub.on_apply)
        # at once: the events of the entries applied next must not pass the jump
        driver.on_snapshot_installed.append(hub.on_apply)
        maintenance = MaintenanceService(header, self._db_size, membership, self.store.backend,
                                         self.store.engine.compact_range)
        watch = WatchService(hub, header, lambda: driver.lead != 0,
                             spec.tick_interval_s * spec.election_ticks, driver.sm)
        return [
            (rpc_pb2_grpc.add_KVServicer_to_server,
             KVService(driver, header, spec.max_request_bytes, spec.max_txn_ops, no_space)),
            (rpc_pb2_grpc.add_MaintenanceServicer_to_server, maintenance),
            (rpc_pb2_grpc.add_ClusterServicer_to_server,
             ClusterService(membership, header, spec.cluster_token, self.client_dial)),
            (rpc_pb2_grpc.add_LeaseServicer_to_server,
             LeaseService(driver, header, no_space=no_space)),
            (rpc_pb2_grpc.add_WatchServicer_to_server, watch),
            (v3lock_pb2_grpc.add_LockServicer_to_server, LockService(recipes, header)),
            (v3election_pb2_grpc.add_ElectionServicer_to_server,
             ElectionService(recipes, header)),
            (rpc_pb2_grpc.add_AuthServicer_to_server,
             AuthService(driver, header, tokens, spec.bcrypt_cost)),
        ]

    def _build_tls(self) -> None:
        """Load the TLS files of each side that serves or dials TLS (a bad file is a
        one-line error before anything starts)."""
        spec = self.spec
        peer_dials = any(u.startswith("https://") for u in spec.peers.values())
        if spec.client_tls.has_cert:
            self.client_tls = ServerTLS(spec.client_tls, spec.tls_policy)
        if (spec.peer_secure or peer_dials) and spec.peer_tls.has_cert:
            self.peer_tls = ServerTLS(spec.peer_tls, spec.tls_policy)

    def _peer_dial(self) -> Dial:
        tls = self.peer_tls
        return plain_dial if tls is None else tls_dial(tls.channel_credentials)

    def client_dial(self, url: str) -> grpc.aio.Channel:
        """A channel to another member's client URL, with this member's client certificate
        when the URL is ``https://``."""
        scheme, _, address = url.rpartition("://")
        if scheme == "https" and self.client_tls is not None:
            return grpc.aio.secure_channel(address, self.client_tls.channel_credentials())
        return grpc.aio.insecure_channel(address)

    async def _listen(self, server: grpc.aio.Server, side: str,
                      addrs: list[tuple[str, bool]], flag: str) -> list[int]:
        """Bind ``server`` on each address: plaintext ones directly, TLS ones through this
        side's :class:`TLSFront`, which forwards to ``server`` on a private Unix socket."""
        ports = []
        for addr, secure in addrs:
            if not secure:
                ports.append(_bind(server, addr, flag))
                continue
            front = self.fronts.get(side)
            if front is None:
                tls = self.client_tls if side == "client" else self.peer_tls
                assert tls is not None
                if self._socket_dir is None:
                    self._socket_dir = _socket_dir(self.spec.data_dir)
                path = os.path.join(self._socket_dir, f"{side}.sock")
                _bind(server, f"unix:{path}", flag)
                front = self.fronts[side] = TLSFront(
                    tls, path, side, handshake_timeout_s=self.spec.tls_handshake_timeout_s)
            ep = parse_url(f"https://{addr}", flag=flag)
            try:
                ports.append(await front.listen(ep.host, ep.port))
            except OSError as exc:
                raise ConfigError(f"{flag}: cannot listen on {addr} ({exc.strerror or exc}); "
                                  "stop what uses it or choose another") from None
        return ports

    def _db_size(self) -> int:
        total = 0
        for entry in os.scandir(self.spec.data_dir):
            if entry.is_file():
                total += entry.stat().st_size
        return total

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish in-flight client requests (up to ``grace_s``), then stop everything."""
        for front in self.fronts.values():
            await front.close()
        if self._client_server is not None:
            await self._client_server.stop(grace_s)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        for task in self._member_tasks:
            task.cancel()
        await asyncio.gather(*self._member_tasks, return_exceptions=True)
        if self.driver is not None:
            self.driver.stop()
        if self._driver_task is not None:
            await asyncio.gather(self._driver_task, return_exceptions=True)
        if self.transport is not None:
            await self.transport.stop()
        if self._peer_server is not None:
            await self._peer_server.stop(0)
        if self.store is not None:
            self.store.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def wait(self) -> None:
        """Return when the driver stops (on a fatal error)."""
        if self._driver_task is not None:
            await asyncio.gather(self._driver_task, return_exceptions=True)


def _bind(server: grpc.aio.Server, addr: str, flag: str) -> int:
    hint = (f"{flag}: cannot listen on {addr}: the port is in use or the address is not "
            f"this machine's; stop what uses it or choose another")
    try:
        port = server.add_insecure_port(addr)
    except RuntimeError:
        raise ConfigError(hint) from None
    if port == 0:
        raise ConfigError(hint)
    return port


def _socket_dir(data_dir: str) -> str:
    """A private directory (0700) for the Unix sockets behind the TLS fronts, named after
    the data dir so a member killed with SIGKILL finds and replaces its own at the next
    start (the data dir's lock makes this member its only user). A name taken by another
    user, or by a link, is left alone for a fresh random one."""
    tag = hashlib.sha1(os.path.realpath(data_dir).encode(), usedforsecurity=False)
    path = os.path.join(tempfile.gettempdir(), f"raftkv-{tag.hexdigest()[:16]}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return tempfile.mkdtemp(prefix="raftkv-")
        shutil.rmtree(path)
    os.mkdir(path, 0o700)
    return path


def _open_registry(spec: NodeSpec) -> MemberRegistry:
    initial = tuple(MemberInfo(mid, name, (url,)) for mid, name, url in spec.initial_members)
    if not initial:  # a spec built by hand: only addresses are known
        initial = tuple(MemberInfo(mid, spec.name if mid == spec.member_id else "",
                                   (f"http://{addr}",)) for mid, addr in spec.peers.items())
    registry = MemberRegistry.open(spec.data_dir, initial)
    if registry.get(spec.member_id) is None and registry.index > 0:
        raise ConfigError(f"member {spec.name} ({spec.member_id:x}) was removed from the "
                          f"cluster; it cannot rejoin with this data dir ({spec.data_dir})")
    return registry


def _peer_address(info: MemberInfo) -> str:
    return parse_url(info.peer_urls[0]).url


def recover_state(store: Store, sm: StateMachine) -> None:
    """Bring the state machine up to the log's snapshot if a crash left it behind.

    A member fsyncs a snapshot received from the leader (its data included) before it
    writes the restored state, which is not fsynced on its own; a power loss in between
    leaves the state behind a log that starts after the snapshot. The stored copy is then
    restored. A member's own snapshots hold no data and never leave it behind (their
    fsynced record follows the state writes they cover).

    Raises:
        CorruptionError: the state is behind a snapshot that holds no data.
    """
    meta = store.log.snapshot_meta()
    if sm.applied_index >= meta.index or meta.index <= 1:
        return  # (a new cluster's first snapshot, at 1, holds the empty state)
    behind = sm.applied_index
    data, _ = split_snapshot_data(store.log.snapshot().data)
    if data:
        sm.restore(data)
    if sm.applied_index < meta.index:
        raise CorruptionError(f"the state at index {sm.applied_index} is behind the log's "
                              f"snapshot at {meta.index}, which does not hold it")
    log.warning("the state was at %d, behind the log's snapshot at %d: restored from it "
                "(now at %d)", behind, meta.index, sm.applied_index)


def _bootstrap(store: Store, sm: StateMachine, voters: frozenset[int]) -> None:
    """A brand-new member of a new cluster: every initial member starts from the same
    snapshot at index 1, term 1, holding the initial membership (as etcd bootstraps)."""
    sm.apply(1, b"")
    meta = SnapshotMeta(index=1, term=1, conf_state=ConfState(voters=voters))
    store.log.save(HardState(term=1, commit=1), (), Snapshot(meta=meta, data=sm.snapshot()))


async def serve(spec: NodeSpec) -> int:
    """Run a member until SIGTERM / SIGINT; returns the process exit code."""
    server = Server(spec)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except ConfigError:
        await server.stop(0)
        raise
    collector.relax()
    collector.freeze_startup()
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping member %s", spec.name)
    await server.stop()
    fatal = server.driver.fatal if server.driver is not None else None
    return 1 if fatal is not None else 0


def insecure_warnings(spec: NodeSpec) -> list[str]:
    """etcd's warning for each plaintext listener on an address other machines can reach."""
    out = []
    addrs = (spec.client_addr, *spec.extra_client_addrs)
    secure = spec.client_secure or (False,) * len(addrs)
    for side, addr, tls in [*(("client", a, s) for a, s in zip(addrs, secure, strict=True)),
                            ("peer", spec.peer_addr, spec.peer_secure)]:
        if not tls and not _is_loopback(addr):
            flags = "--cert-file/--key-file" if side == "client" else \
                "--peer-cert-file/--peer-key-file"
            out.append(f"serving {side} traffic insecurely on {addr}; this is strongly "
                       f"discouraged! (use https:// URLs and {flags})")
    return out


def _is_loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    if host == "localhost" or host.startswith("unix"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def spec_from_config(cfg: ServerConfig) -> NodeSpec:
    """Resolve a validated :class:`ServerConfig` into what :class:`Server` runs."""
    cfg.validate()
    warnings = cfg.tls_plan()
    listen: list[Endpoint] = list(cfg.listen_client_endpoints)
    clients = [e.address for e in listen]
    peers = {m.id: cfg.peer_endpoint(m.name).url for m in cfg.members}
    election_s = cfg.election_timeout_ms / 1000.0
    return NodeSpec(
        name=cfg.name, member_id=cfg.member_id, cluster_id=cfg.cluster_id,
        cluster_token=cfg.initial_cluster_token, data_dir=str(cfg.data_path),
        client_addr=clients[0], extra_client_addrs=tuple(clients[1:]),
        peer_addr=cfg.listen_peer_endpoints[0].address, peers=peers,
        new_cluster=cfg.initial_cluster_state == "new",
        tick_interval_s=cfg.tick_interval_s, election_ticks=cfg.election_ticks,
        heartbeat_ticks=cfg.heartbeat_ticks, snapshot_count=cfg.snapshot_count,
        snapshot_catchup_entries=cfg.snapshot_catchup_entries,
        max_request_bytes=cfg.max_request_bytes,
        client_urls=tuple(canonical_url(u) for u in cfg.advertise_client_urls),
        initial_members=tuple((m.id, m.name, canonical_url(m.peer_url)) for m in cfg.members),
        quota_backend_bytes=cfg.quota_backend_bytes,
        max_txn_ops=cfg.max_txn_ops,
        request_timeout_s=5.0 + 2 * election_s,
        client_secure=tuple(e.secure for e in listen),
        peer_secure=cfg.listen_peer_endpoints[0].secure,
        client_tls=cfg.client_tls, peer_tls=cfg.peer_tls, tls_policy=cfg.tls_policy,
        auth_token_ttl_s=cfg.auth_token_ttl, bcrypt_cost=cfg.bcrypt_cost,
        warnings=tuple(warnings),
    )


def run_server(cfg: ServerConfig) -> int:
    """Run a member in the foreground until SIGTERM / SIGINT; the process exit code.

    Raises:
        ConfigError: the configuration or the data directory cannot be used (one line).
    """
    level = getattr(logging, cfg.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = spec_from_config(cfg)
    if cfg.audit_log:
        try:
            audit_configure(cfg.audit_log)
        except OSError as exc:
            raise ConfigError(f"--audit-log: cannot open {cfg.audit_log} "
                              f"({exc.strerror or exc}); give a writable file") from None
    # uvloop's event loop: about 10% more Puts/s than asyncio's (docs/performance.md)
    try:
        import uvloop
    except ImportError:  # an optional speed-up, e.g. on a platform without it
        return asyncio.run(serve(spec))
    return uvloop.run(serve(spec))
