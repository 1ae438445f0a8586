"""The cluster under test: fresh ``python -m raftkv serve`` processes on a network backend.

Each member has a stable index and name (``n1`` ...) and a *generation*: removing a member
and adding it back gives it a new peer port (so a new member id, as etcd requires) and a
fresh data directory, and it joins with ``--initial-cluster-state existing``. Processes are
signalled by PID only (kill -9, SIGSTOP / SIGCONT); every PID is recorded in the run's
state file so ``raftkv-chaos cleanup`` can find it.

Directory layout under the run's output directory::

    cluster/nK/          member K's data directory (nK.gG after a re-add in generation G)
    cluster/nK.log       member K's stdout and stderr, all generations
    tls/                 with ``--tls``: the run's CA and certificates (:mod:`chaos.tls`)

With TLS on (:meth:`ChaosCluster.enable_tls`) every URL is ``https://``, every member runs
with mutual TLS on its client and peer listeners, and the harness's own channels present
the client certificate.

With auth (:meth:`ChaosCluster.enable_auth` before the start, :meth:`ChaosCluster.setup_auth`
once the members answer) every member runs with the auth flags of :mod:`chaos.auth`, and
the harness's own channels (probes, ``Status``, the Cluster API) act as ``root``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from chaos.auth import ClusterAuth, Tokens, expected, open_channel, probe_enforcement
from chaos.net import Network
from chaos.runstate import RunState
from chaos.tls import ClusterTLS, make_certs
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

__all__ = ["ChaosCluster", "ClusterError", "Member"]

log = logging.getLogger("chaos.cluster")
TOKEN = "raftkv-chaos"
PROBE_KEY = b"raftkv-chaos-probe"


class ClusterError(Exception):
    """The cluster could not be started or brought back (the run cannot be done)."""


@dataclass
class Member:
    """One member slot (see the module docstring)."""

    index: int
    name: str
    root: Path
    generation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    member_id: int = 0
    paused: bool = False
    removed: bool = False
    starts: list[float] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)  # this generation's command line

    @property
    def data_dir(self) -> Path:
        suffix = f".g{self.generation}" if self.generation else ""
        return self.root / f"{self.name}{suffix}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ChaosCluster:
    """Starts, breaks and repairs the member processes (see the module docstring)."""

    def __init__(self, net: Network, root: Path, size: int, state: RunState, *,
                 flags: Sequence[str] = (), failpoints: Sequence[str] = ()) -> None:
        self.net = net
        self.root = root
        self.state = state
        self.flags = tuple(flags)
        self.failpoints = tuple(failpoints)
        self.members = [Member(i, f"n{i + 1}", root) for i in range(size)]
        self._channels: dict[int, grpc.aio.Channel] = {}
        self.tls: ClusterTLS | None = None
        self.auth: ClusterAuth | None = None
        self.tokens: Tokens | None = None  # root's, once auth is on

    def enable_tls(self, directory: Path) -> ClusterTLS:
        """Make the run's certificates (each member's naming the addresses the network
        gives it) and start every member from now on with mutual TLS. Call after the
        network's setup (the netns backend picks its subnet there) and before any start."""
        self.tls = make_certs(directory, ((m.name, self.net.cert_hosts(m.index))
                                          for m in self.members))
        return self.tls

    def enable_auth(self, auth: ClusterAuth) -> None:
        """Start every member from now on with the auth flags (:mod:`chaos.auth`); call
        before any start, and :meth:`setup_auth` once the members answer."""
        self.auth = auth

    async def setup_auth(self, timeout_s: float) -> dict[str, str]:
        """Add the run's users and role and turn auth on (through the leader if one
        answers); from then on the harness's channels act as ``root``.

        Returns:
            What a request without a token and the workload user's write just past its
            grant got from the leader (:func:`chaos.auth.probe_enforcement`; once it is
            :func:`chaos.auth.expected`, or the last answer after ``timeout_s``), and
            ``member``: the member asked.

        Raises:
            ClusterError: auth could not be turned on within ``timeout_s``.
        """
        assert self.auth is not None
        leader = await self.leader()  # the others would forward to it: start there

        def channels() -> list[grpc.aio.Channel]:
            live = [m for m in self.members if m.alive() and not m.paused and not m.removed]
            live.sort(key=lambda m: m is not leader)
            return [self.channel(m) for m in live]

        try:
            await self.auth.enable(channels, timeout_s)
        except TimeoutError as exc:
            raise ClusterError(f"could not turn auth on: {exc}") from exc
        await self.close()  # reopened with root's token
        self.tokens = Tokens(self.auth.root)
        deadline = time.monotonic() + timeout_s
        while True:
            target = leader if leader is not None else self.members[0]
            found = await probe_enforcement(
                self.endpoint(target), self.tls.credentials() if self.tls else None, self.auth)
            if found == expected(self.tls is not None) or time.monotonic() > deadline:
                return {**found, "member": target.name}
            await asyncio.sleep(0.5)
            leader = await self.leader()

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    # -- addresses ----------------------------------------------------------------------
    def endpoint(self, m: Member) -> str:
        return f"{self.net.host(m.index)}:{self.net.client_port(m.index)}"

    def peer_url(self, m: Member) -> str:
        port = self.net.peer_port(m.index, m.generation)
        return f"{self.scheme}://{self.net.host(m.index)}:{port}"

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={self.peer_url(m)}" for m in self.members if not m.removed)

    def by_id(self, member_id: int) -> Member | None:
        return next((m for m in self.members if m.member_id == member_id and member_id), None)

    # -- processes ----------------------------------------------------------------------
    def start(self, m: Member, *, state: str = "new", initial_cluster: str | None = None) -> None:
        """Start a new generation of member ``m`` (bootstrap, or join as ``existing``)."""
        client_url = f"{self.scheme}://{self.endpoint(m)}"
        m.argv = [sys.executable, "-m", "raftkv", "serve", "--name", m.name,
                  "--data-dir", str(m.data_dir),
                  "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                  "--listen-peer-urls", self.peer_url(m),
                  "--initial-advertise-peer-urls", self.peer_url(m),
                  "--initial-cluster", initial_cluster or self.initial_cluster(),
                  "--initial-cluster-state", state, "--initial-cluster-token", TOKEN,
                  *(self.tls.server_flags(m.name) if self.tls is not None else ()),
                  *(self.auth.server_flags() if self.auth is not None else ()),
                  *self.flags]
        self._spawn(m, state)

    def restart(self, m: Member) -> None:
        """Restart ``m`` from its data directory with the very command line its generation
        first ran with, as an operator's unit file would (raftkv derives the cluster id
        from --initial-cluster even when the data directory exists, so a restart with the
        *current* membership would be refused)."""
        if not m.argv:
            self.start(m)
        else:
            self._spawn(m, "restart")

    def _spawn(self, m: Member, why: str) -> None:
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("grpc_proxy", "http_proxy", "https_proxy")}
        env.update(self.net.env(m.index))
        env["RAFTKV_FAILPOINTS"] = ",".join(self.failpoints)
        if self.tls is not None:  # TLS fronts make their socket dirs here (removed with the run)
            self.state.tmp_dir.mkdir(mode=0o700, exist_ok=True)
            env["TMPDIR"] = str(self.state.tmp_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        with m.log_path.open("ab") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} start generation {m.generation} "
                      f"({why})\n".encode())
            out.flush()
            m.proc = subprocess.Popen(self.net.command(m.index, m.argv), stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        m.paused = False
        m.starts.append(time.monotonic())
        self.state.pids[m.name] = m.proc.pid
        self.state.save()

    def start_all(self) -> None:
        for m in self.members:
            self.start(m)

    async def kill(self, m: Member) -> None:
        """kill -9 and reap."""
        if m.proc is None or m.proc.poll() is not None:
            return
        m.proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.proc.pid, signal.SIGCONT)
        m.paused = False
        while m.proc.poll() is None:
            await asyncio.sleep(0.02)

    def pause(self, m: Member) -> None:
        if m.alive() and m.proc is not None:
            m.proc.send_signal(signal.SIGSTOP)
            m.paused = True

    def resume(self, m: Member) -> None:
        if m.alive() and m.proc is not None:
            m.proc.send_signal(signal.SIGCONT)
        m.paused = False

    def stop_all(self) -> None:
        """Synchronous teardown: SIGCONT + SIGTERM, then SIGKILL whatever lingers."""
        for m in self.members:
            if m.alive() and m.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.send_signal(signal.SIGCONT)
                    m.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for m in self.members:
            if m.proc is None:
                continue
            try:
                m.proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()
        self.state.remove_tmp_dir()

    # -- gRPC ---------------------------------------------------------------------------
    def channel(self, m: Member) -> grpc.aio.Channel:
        """A shared channel to member ``m`` (the harness's own, for probes and admin; as
        ``root`` once auth is on)."""
        if m.index not in self._channels:
            self._channels[m.index] = open_channel(
                self.endpoint(m), self.tls.credentials() if self.tls is not None else None,
                self.tokens)
        return self._channels[m.index]

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()

    async def status(self, m: Member, timeout_s: float = 1.0) -> rpc_pb2.StatusResponse | None:
        if not m.alive() or m.paused:
            return None
        stub = rpc_pb2_grpc.MaintenanceStub(self.channel(m))  # type: ignore[no-untyped-call]
        try:
            st: rpc_pb2.StatusResponse = await stub.Status(rpc_pb2.StatusRequest(),
                                                           timeout=timeout_s)
        except grpc.RpcError:
            return None
        m.member_id = st.header.member_id
        return st

    async def probe(self, m: Member, timeout_s: float = 2.0) -> str | None:
        """None if ``m`` answers a linearizable Range, else why not."""
        if not m.alive():
            return "not running"
        stub = rpc_pb2_grpc.KVStub(self.channel(m))  # type: ignore[no-untyped-call]
        try:
            await stub.Range(rpc_pb2.RangeRequest(key=PROBE_KEY), timeout=timeout_s)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        await self.status(m)
        return None

    async def wait_healthy(self, timeout_s: float) -> None:
        """Wait until every member in the cluster answers a linearizable Range.

        Raises:
            ClusterError: not within ``timeout_s`` (names the member and why).
        """
        deadline = time.monotonic() + timeout_s
        ready: set[int] = set()
        last = "no member answered yet"
        while True:
            for m in self.members:
                if m.removed or m.index in ready:
                    continue
                if m.proc is not None and m.proc.poll() is not None and not m.removed:
                    last = f"{m.name} exited with status {m.proc.returncode}"
                    continue
                why = await self.probe(m)
                if why is None:
                    ready.add(m.index)
                else:
                    last = f"{m.name}: {why}"
            if len(ready) == sum(not m.removed for m in self.members):
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster did not answer linearizable reads on every "
                                   f"member within {timeout_s:g}s (last: {last}); logs in "
                                   f"{self.root}")
            await asyncio.sleep(0.2)

    async def leader(self) -> Member | None:
        """The member most live members name as leader, if any answers."""
        votes: dict[int, int] = {}
        for m in self.members:
            st = await self.status(m, 0.5)
            if st is not None and st.leader:
                votes[st.leader] = votes.get(st.leader, 0) + 1
        if not votes:
            return None
        return self.by_id(max(votes, key=lambda k: votes[k]))

    # -- membership ---------------------------------------------------------------------
    async def _cluster_call(self, call: str, request: object, exclude: Member | None,
                            timeout_s: float) -> object:
        """Send a Cluster API call to any live member but ``exclude``, retrying."""
        deadline = time.monotonic() + timeout_s
        last: str = "no live member"
        while time.monotonic() < deadline:
            for m in self.members:
                if m is exclude or m.removed or not m.alive() or m.paused:
                    continue
                stub = rpc_pb2_grpc.ClusterStub(self.channel(m))  # type: ignore[no-untyped-call]
                try:
                    return await getattr(stub, call)(request, timeout=5.0)
                except grpc.RpcError as exc:
                    last = f"{exc.details()}"
                    if "member not found" in last or "peer urls already exists" in last.lower():
                        return None  # an earlier attempt took effect
            await asyncio.sleep(0.5)
        raise ClusterError(f"{call} did not succeed within {timeout_s:g}s: {last}")

    async def remove_member(self, m: Member, timeout_s: float = 30.0) -> None:
        """MemberRemove ``m`` through another member, then kill its process."""
        if not m.member_id:
            await self.status(m)
        if m.member_id:
            await self._cluster_call("MemberRemove", rpc_pb2.MemberRemoveRequest(ID=m.member_id),
                                     m, timeout_s)
        m.removed = True
        await self.kill(m)

    async def add_member(self, m: Member, timeout_s: float = 30.0) -> None:
        """MemberAdd ``m`` with a new peer URL and start it, empty, as ``existing``."""
        await self.kill(m)
        m.generation += 1
        shutil.rmtree(m.data_dir, ignore_errors=True)
        await self._cluster_call("MemberAdd", rpc_pb2.MemberAddRequest(
            peerURLs=[self.peer_url(m)]), m, timeout_s)
        m.removed = False
        m.member_id = 0
        self.start(m, state="existing", initial_cluster=self.initial_cluster())

    async def reconcile(self, timeout_s: float) -> None:
        """After healing: every member slot is a running member of the cluster again.

        A member whose peer URL the cluster no longer lists (removed, maybe by a removal
        whose answer was lost) is added back; a member that is not running is restarted.
        """
        listed = await self._listed_peer_urls(timeout_s)
        for m in self.members:
            if m.removed or self.peer_url(m) not in listed:
                m.removed = True  # a removal whose answer was lost also lands here
                await self.add_member(m, timeout_s)
            elif not m.alive():
                self.restart(m)

    async def _listed_peer_urls(self, timeout_s: float) -> set[str]:
        """The peer URLs in the leader's member list (a lagging member's list could miss
        a recent change)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = await self.leader()
            if leader is not None:
                stub = rpc_pb2_grpc.ClusterStub(self.channel(leader))  # type: ignore[no-untyped-call]
                try:
                    resp = await stub.MemberList(rpc_pb2.MemberListRequest(), timeout=5.0)
                    return {u for mem in resp.members for u in mem.peerURLs}
                except grpc.RpcError:
                    pass
            await asyncio.sleep(0.5)
        raise ClusterError(f"no leader answered MemberList within {timeout_s:g}s")
