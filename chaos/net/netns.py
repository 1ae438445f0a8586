"""The namespace backend (root): real dropped packets between real network stacks.

Layout for a run with prefix ``P`` (``rkvc<run id>``) and subnet ``10.77.S.0/24``::

    root namespace: bridge P"br" with 10.77.S.254  (the harness's clients live here)
    member i:       namespace P"-n<i>", eth0 = 10.77.S.<i>, veth peer P"v<i>" on the bridge

Faults are nftables rules in a table ``inet rkvc`` inside each member's namespace, rebuilt
as a whole on every change (``nft -f``, atomic): an input rule per blocked source set
(``ip saddr {...} drop``) and, for packet loss, ``ip saddr {peers} numgen random mod 100 <
N drop``. Only traffic from other members is dropped; the bridge address (clients) is
never matched. This kernel has no ``netem`` qdisc, so latency is the proxy backend's job.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence

from chaos.net import Link, Unsupported
from chaos.runstate import remove_kernel_objects

__all__ = ["NetnsBackend", "netns_unavailable"]

CLIENT_PORT = 2379
PEER_PORT = 2380
TABLE = "rkvc"


def netns_unavailable() -> str | None:
    """Why the namespace backend cannot run here, or None if it can."""
    import os

    if os.geteuid() != 0:
        return "the netns backend needs root (use --backend proxy)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the netns backend needs `{tool}` on PATH (apt-get install " \
                   f"{'nftables' if tool == 'nft' else 'iproute2'}), or use --backend proxy"
    return None


def _run(*argv: str, stdin: str | None = None) -> None:
    """Run a setup command; raise RuntimeError with its stderr if it fails."""
    out = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                         check=False, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {out.stderr.strip()}")


def free_subnet() -> int:
    """A third octet S such that no interface holds an address in 10.77.S.0/24."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=False).stdout
    used = set()
    for line in out.split():
        if "/" in line:
            try:
                net = ipaddress.ip_interface(line).network
            except ValueError:
                continue
            if str(net).startswith("10.77."):
                used.add(int(str(net).split(".")[2]))
    for s in range(1, 250):
        if s not in used:
            return s
    raise RuntimeError("no free 10.77.S.0/24 subnet")


class NetnsBackend:
    """See the module docstring."""

    name = "netns"

    def __init__(self, prefix: str, size: int) -> None:
        self.prefix = prefix
        self.size = size
        self.subnet = 0
        self.bridge = f"{prefix}br"
        self._blocked: set[Link] = set()
        self._loss: tuple[int, frozenset[int]] = (0, frozenset())

    def namespace(self, index: int) -> str:
        return f"{self.prefix}-n{index + 1}"

    def host(self, index: int) -> str:
        return f"10.77.{self.subnet}.{index + 1}"

    def cert_hosts(self, index: int) -> list[str]:
        """The namespace's one address: members are reached at it and, having no other
        route, connect to their peers from it."""
        return [self.host(index)]

    @property
    def bridge_address(self) -> str:
        return f"10.77.{self.subnet}.254"

    def client_port(self, index: int) -> int:
        del index
        return CLIENT_PORT

    def peer_port(self, index: int, generation: int) -> int:
        del index
        return PEER_PORT + generation

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(index), *argv]

    def env(self, index: int) -> Mapping[str, str]:
        del index
        return {}

    def setup(self) -> None:
        """Create the bridge, the namespaces and their links (synchronous)."""
        self.subnet = free_subnet()
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(self.size):
            ns, veth = self.namespace(i), f"{self.prefix}v{i + 1}"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                 "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.host(i)}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=self._ruleset(i))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _ruleset(self, index: int) -> str:
        lines = [f"table inet {TABLE} {{",
                 "  chain input { type filter hook input priority 0; policy accept; }",
                 "}",
                 f"flush chain inet {TABLE} input"]
        sources = sorted(self.host(s) for s, d in self._blocked if d == index)
        if sources:
            lines.append(f"add rule inet {TABLE} input ip saddr {{ {', '.join(sources)} }} drop")
        percent, targets = self._loss
        if percent > 0 and index in targets:
            peers = ", ".join(self.host(i) for i in range(self.size) if i != index)
            lines.append(f"add rule inet {TABLE} input ip saddr {{ {peers} }} "
                         f"numgen random mod 100 < {percent} drop")
        return "\n".join(lines) + "\n"

    async def _apply(self) -> None:
        for i in range(self.size):
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", self.namespace(i), "nft", "-f", "-",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate(self._ruleset(i).encode())
            if proc.returncode != 0:
                raise RuntimeError(f"nft in {self.namespace(i)} failed: {err.decode().strip()}")

    async def block(self, links: Collection[Link]) -> None:
        self._blocked = set(links)
        await self._apply()

    async def loss(self, percent: int, members: Collection[int]) -> None:
        self._loss = (percent, frozenset(members))
        await self._apply()

    async def slow(self, delay_s: float) -> None:
        del delay_s
        raise Unsupported("this kernel has no netem qdisc: latency needs --backend proxy")

    async def heal(self) -> None:
        self._blocked = set()
        self._loss = (0, frozenset())
        await self._apply()

    def teardown(self) -> None:
        remove_kernel_objects(self.prefix)
