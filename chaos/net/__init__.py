"""Network backends for the real-cluster harness.

A backend decides where each member listens, how its process is started, and how faults
reach the wire:

* :class:`chaos.net.netns.NetnsBackend` (root): one network namespace per member, a veth
  into a bridge the harness creates, nftables drop rules inside the namespaces for
  partitions and ``numgen random`` rules for packet loss;
* :class:`chaos.net.proxy.ProxyBackend` (no root): members on 127.0.0.1, each member's
  outgoing peer connections go through its own HTTP CONNECT proxy (gRPC's ``grpc_proxy``)
  run by the harness, which cuts or delays them per directed link.

Faults are described as a set of blocked *directed* links ``(src, dst)`` (member indexes):
traffic from ``src`` to ``dst`` is dropped. The harness's clients are never cut off (as in
Jepsen, clients can always reach their member; the member cannot reach its peers).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

__all__ = ["Link", "Network", "Unsupported"]

Link = tuple[int, int]
"""A directed link between members, by index: traffic from ``[0]`` to ``[1]``."""


class Unsupported(Exception):
    """The backend cannot inject this fault (e.g. packet loss through the proxy)."""


class Network(Protocol):
    """What the harness needs of a network backend."""

    name: str

    def host(self, index: int) -> str:
        """The address member ``index`` listens on and is reached at."""

    def cert_hosts(self, index: int) -> list[str]:
        """The addresses member ``index`` is reached at *and* connects to its peers from:
        its certificate's IP SANs under ``--tls`` (a peer listener refuses a peer whose
        certificate does not name the address the connection comes from)."""

    def client_port(self, index: int) -> int:
        """Member ``index``'s client port."""

    def peer_port(self, index: int, generation: int) -> int:
        """Member ``index``'s peer port in its ``generation`` (a re-added member gets a
        new peer URL, hence a new member id)."""

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` as member ``index``."""

    def env(self, index: int) -> Mapping[str, str]:
        """Extra environment for member ``index``'s process."""

    async def start(self) -> None:
        """Anything that must run on the harness's event loop (the proxies)."""

    async def block(self, links: Collection[Link]) -> None:
        """Drop traffic on exactly these directed links (replacing earlier blocks)."""

    async def loss(self, percent: int, members: Collection[int]) -> None:
        """Drop ``percent``% of the peer packets reaching ``members``; 0 clears it."""

    async def slow(self, delay_s: float) -> None:
        """Delay every peer link by ``delay_s``; 0 clears it."""

    async def heal(self) -> None:
        """Remove every fault."""

    async def stop(self) -> None:
        """Stop whatever :meth:`start` started (on the loop, before it closes)."""

    def teardown(self) -> None:
        """Remove everything the backend created (synchronous: runs after the loop)."""
