"""The proxy backend (no root needed): members on 127.0.0.1, peer links through proxies.

Member ids are derived from peer URLs, so every member must see the same URLs; instead of
rewriting them, each member process gets ``grpc_proxy=http://127.0.0.1:<its proxy>`` in its
environment and gRPC sends every outgoing connection through that HTTP CONNECT proxy. The
proxy of member ``i`` reads ``CONNECT host:port``, maps the port to the destination member
``j`` and so knows the directed link ``i -> j``. It can then:

* cut the link: close its open connections and refuse new ones (a partition);
* slow it: deliver each chunk ``delay_s`` after it was read (added latency; order kept).

Packet loss has no TCP-level equivalent here and is refused (use the netns backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Collection, Mapping, Sequence

from chaos.net import Link, Unsupported

__all__ = ["ProxyBackend"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(int(s.getsockname()[1]))
    for s in socks:
        s.close()
    return ports


class ProxyBackend:
    """See the module docstring."""

    name = "proxy"
    GENERATIONS = 8  # peer ports reserved per member for re-adds

    def __init__(self, size: int) -> None:
        self.size = size
        ports = free_ports(size * (2 + self.GENERATIONS))
        self._client = ports[:size]
        self._proxy = ports[size:2 * size]
        rest = ports[2 * size:]
        self._peer = [rest[i * self.GENERATIONS:(i + 1) * self.GENERATIONS]
                      for i in range(size)]
        self._owner = {p: i for i, ps in enumerate(self._peer) for p in ps}
        self._owner.update({p: i for i, p in enumerate(self._client)})
        self._blocked: set[Link] = set()
        self._delay_s = 0.0
        self._conns: dict[Link, set[asyncio.StreamWriter]] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def host(self, index: int) -> str:
        del index
        return "127.0.0.1"

    def cert_hosts(self, index: int) -> list[str]:
        """127.0.0.1: members listen there, and a peer connection reaches its destination
        from the proxy, also on 127.0.0.1 (the CONNECT tunnel carries the TLS session end to
        end, so the certificate is the dialing member's while the source address is the
        proxy's; with every party on 127.0.0.1 the two agree)."""
        del index
        return ["127.0.0.1"]

    def client_port(self, index: int) -> int:
        return self._client[index]

    def peer_port(self, index: int, generation: int) -> int:
        return self._peer[index][generation % self.GENERATIONS]

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        del index
        return list(argv)

    def env(self, index: int) -> Mapping[str, str]:
        return {"grpc_proxy": f"http://127.0.0.1:{self._proxy[index]}",
                "no_grpc_proxy": "", "no_proxy": ""}

    def setup(self) -> None:
        return None

    async def start(self) -> None:
        for i in range(self.size):
            server = await asyncio.start_server(functools.partial(self._serve, i),
                                                "127.0.0.1", self._proxy[i])
            self._servers.append(server)

    async def _serve(self, src: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await self._connect(src, reader, writer)

    async def _connect(self, src: int, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            target = head.split(b"\r\n", 1)[0].split()[1].decode()
            host, _, port = target.rpartition(":")
            dst = self._owner.get(int(port), -1)
            if (src, dst) in self._blocked:
                writer.write(b"HTTP/1.1 503 Partitioned\r\n\r\n")
                writer.close()
                return
            up_r, up_w = await asyncio.open_connection(host, int(port))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, IndexError, ValueError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        link = (src, dst)
        self._conns.setdefault(link, set()).update({writer, up_w})
        try:
            await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
        finally:
            self._conns[link].difference_update({writer, up_w})
            for w in (writer, up_w):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                if not data:
                    return
                if at > loop.time():
                    await asyncio.sleep(at - loop.time())
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                await queue.put((loop.time() + self._delay_s, data))
            await queue.put((0.0, b""))
            await sender
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(OSError):
                writer.close()

    async def block(self, links: Collection[Link]) -> None:
        self._blocked = set(links)
        for link in self._blocked:
            for w in list(self._conns.get(link, ())):
                w.close()

    async def loss(self, percent: int, members: Collection[int]) -> None:
        del members
        if percent:
            raise Unsupported("packet loss needs real packets: use --backend netns (root)")

    async def slow(self, delay_s: float) -> None:
        self._delay_s = max(0.0, delay_s)

    async def heal(self) -> None:
        self._blocked = set()
        self._delay_s = 0.0

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._servers.clear()

    def teardown(self) -> None:
        for server in self._servers:
            server.close()
