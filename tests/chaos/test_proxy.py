"""The proxy backend on loopback (no root): a real HTTP CONNECT tunnel per member that
the nemesis cuts (open connections closed, new ones refused) and slows."""

from __future__ import annotations

import asyncio
import time

from chaos.net.proxy import ProxyBackend


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            w.write(data)
            await w.drain()
        w.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _tunnel(proxy_port: int, target_port: int
                  ) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", proxy_port)
    w.write(f"CONNECT 127.0.0.1:{target_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    return head, r, w


async def _roundtrip(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bytes:
    w.write(b"ping")
    return await asyncio.wait_for(r.readexactly(4), 5)


def test_cut_closes_and_refuses_then_heal_restores() -> None:
    async def main() -> None:
        net = ProxyBackend(2)
        await net.start()
        server, _ = await _echo_server()
        try:
            proxy = int(net.env(0)["grpc_proxy"].rsplit(":", 1)[1])
            # pretend the echo server is member 1: the proxy maps it by peer port
            net._owner[int(server.sockets[0].getsockname()[1])] = 1
            port = int(server.sockets[0].getsockname()[1])
            head, r, w = await _tunnel(proxy, port)
            assert head.startswith(b"HTTP/1.1 200")
            assert await _roundtrip(r, w) == b"ping"
            await net.block({(0, 1)})
            assert await asyncio.wait_for(r.read(), 5) == b""  # the open tunnel was cut
            head, _, _ = await _tunnel(proxy, port)
            assert head.startswith(b"HTTP/1.1 503")  # and a new one is refused
            await net.block({(1, 0)})  # the other direction does not affect 0 -> 1
            head, r, w = await _tunnel(proxy, port)
            assert head.startswith(b"HTTP/1.1 200")
            await net.heal()
            assert await _roundtrip(r, w) == b"ping"
        finally:
            server.close()
            await net.stop()
    asyncio.run(main())


def test_slow_delays_every_chunk() -> None:
    async def main() -> None:
        net = ProxyBackend(2)
        await net.start()
        server, port = await _echo_server()
        try:
            proxy = int(net.env(0)["grpc_proxy"].rsplit(":", 1)[1])
            _, r, w = await _tunnel(proxy, port)
            await net.slow(0.3)
            started = time.monotonic()
            assert await _roundtrip(r, w) == b"ping"
            assert time.monotonic() - started >= 0.55  # 0.3 s each way
        finally:
            server.close()
            await net.stop()
    asyncio.run(main())
