"""TLS in front of a listener: handshakes in Python's ``ssl`` (OpenSSL), bytes forwarded to
a server on a private Unix socket.

grpcio's Python API cannot set TLS versions or ciphers, check a CRL, an allowed CN or
hostname, or give a handshake deadline of its own; OpenSSL through ``ssl`` can do all of it,
at the handshake. So every ``https://`` listener (client gRPC, peer gRPC, and the HTTP
listeners) is a :class:`TLSFront`: it accepts TCP connections, runs the handshake with the
context :class:`~raftkv.server.tls.ServerTLS` gives it for that connection, checks the
verified certificate, and only then connects to the real server, listening on a Unix socket
in a directory only this user can enter, and copies bytes both ways (with backpressure).

* A connection that does not finish its handshake within ``handshake_timeout_s`` (10 s, as
  etcd since 2026) is dropped, and at most ``max_handshakes`` run at once; more are closed
  at once (both as etcd's advisory GHSA-6vch-q96h-7gc3 asks).
* Every refused connection is named in one log line: side, remote address and the reason.
* The server behind sees each forwarded connection come from its own abstract Unix address;
  :meth:`TLSFront.identity` maps the gRPC peer string (``context.peer()``) back to the
  remote address and verified certificate (for certificate-based identities).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import cast

from raftkv.server.tls import ServerTLS, common_name

__all__ = ["PeerIdentity", "TLSFront"]

log = logging.getLogger("raftkv.server.tls")

HANDSHAKE_TIMEOUT_S = 10.0
MAX_HANDSHAKES = 256
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who is at the other end of a forwarded connection."""

    remote: str
    common_name: str
    certificate: dict[str, object]


class _Pipe:
    """Writes to one transport, coalesced per event-loop iteration (one TLS record and
    one syscall for the frames that arrive together)."""

    __slots__ = ("_loop", "_pending", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def push(self, data: bytes) -> None:
        if not self._pending and self.transport is not None:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        if self._pending:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        t = self.transport
        if t is not None and pending and not t.is_closing():
            t.write(pending[0] if len(pending) == 1 else b"".join(pending))


class _Inner(asyncio.Protocol):
    """The connection to the real server; what it sends goes out through TLS."""

    def __init__(self, outer: _Outer) -> None:
        self.outer = outer

    def data_received(self, data: bytes) -> None:
        self.outer.to_client.push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.outer.close()

    def pause_writing(self) -> None:
        self.outer.pause_reading()

    def resume_writing(self) -> None:
        self.outer.resume_reading()


class _Outer(asyncio.Protocol):
    """The client's connection: plain TCP until the handshake, then decrypted bytes."""

    def __init__(self, front: TLSFront) -> None:
        self.front = front
        loop = asyncio.get_running_loop()
        self.to_server = _Pipe(loop)
        self.to_client = _Pipe(loop)
        self.transport: asyncio.BaseTransport | None = None
        self.inner: asyncio.Transport | None = None
        self.peer_key = ""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called once the handshake is done, with the TLS transport."""
        self.transport = transport
        self.to_client.attach(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.to_server.push(data)

    def eof_received(self) -> bool | None:
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_reading()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_reading()

    def pause_reading(self) -> None:
        t = self.to_client.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def resume_reading(self) -> None:
        t = self.to_client.transport
        if t is not None and not t.is_closing():
            t.resume_reading()

    def gone(self) -> bool:
        return self.closed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.to_client.flush()
        for t in (self.to_client.transport, self.inner):
            if t is not None and not t.is_closing():
                t.close()
        self.front.forget(self)


class TLSFront:
    """Terminates TLS for one listener; see the module docstring.

    Args:
        tls: the side's builder (:class:`ServerTLS`): its context is taken per handshake.
        inner_path: the Unix socket the real server listens on.
        side: ``client``, ``peer``, ``metrics`` ...: names the listener in log lines.
    """

    def __init__(self, tls: ServerTLS, inner_path: str, side: str, *,
                 handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
                 max_handshakes: int = MAX_HANDSHAKES) -> None:
        self.tls = tls
        self.inner_path = inner_path
        self.side = side
        self.handshake_timeout_s = handshake_timeout_s
        self.max_handshakes = max_handshakes
        self._handshakes = 0
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns_open: set[_Outer] = set()
        self._identities: dict[str, PeerIdentity] = {}
        self._tag = f"raftkv-{os.getpid()}-{next(_ids)}"
        self._conns = itertools.count(1)

    async def listen(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port bound."""
        infos = await asyncio.get_running_loop().getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sockets.append(sock)
        task = asyncio.get_running_loop().create_task(self._accept_loop(sock))
        self._accepting.append(task)
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        for task in self._accepting:
            task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._accepting, *self._tasks, return_exceptions=True)
        for sock in self._sockets:
            sock.close()
        for conn in list(self._conns_open):
            conn.close()

    def identity(self, peer: str) -> PeerIdentity | None:
        """The identity behind ``peer`` (a gRPC ``context.peer()`` of the server behind)."""
        return self._identities.get(peer)

    def forget(self, conn: _Outer) -> None:
        self._conns_open.discard(conn)
        if conn.peer_key:
            self._identities.pop(conn.peer_key, None)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except OSError as exc:  # e.g. out of file descriptors: keep accepting
                log.warning("%s listener: accept failed (%s)", self.side, exc)
                await asyncio.sleep(0.1)
                continue
            remote = _remote(addr)
            if self._handshakes >= self.max_handshakes:
                log.warning("rejected connection on the %s listener from %s (error \"%d TLS "
                            "handshakes already in progress\")", self.side, remote,
                            self._handshakes)
                sock.close()
                continue
            task = loop.create_task(self._serve(sock, remote))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock: socket.socket, remote: str) -> None:
        conn = await self._handshake(sock, remote)
        if conn is None:
            return
        sslobj = conn.transport.get_extra_info("ssl_object") if conn.transport else None
        cert = (sslobj.getpeercert() if sslobj is not None else None) or {}
        why = self.tls.check_peer(cert, remote.rsplit(":", 1)[0].strip("[]"))
        if why is not None:
            log.warning("rejected connection on the %s listener from %s (error %r)",
                        self.side, remote, why)
            conn.close()
            return
        try:
            await self._connect_inner(conn, remote, cert)
        except OSError as exc:
            log.warning("%s listener: cannot reach the server behind it (%s); dropping the "
                        "connection from %s", self.side, exc, remote)
            conn.close()

    async def _handshake(self, sock: socket.socket, remote: str) -> _Outer | None:
        loop = asyncio.get_running_loop()
        self._handshakes += 1
        conn = _Outer(self)
        try:
            await loop.connect_accepted_socket(
                lambda: conn, sock, ssl=self.tls.context(),
                ssl_handshake_timeout=self.handshake_timeout_s)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            log.warning("rejected connection on the %s listener from %s (error %r)",
                        self.side, remote, _reason(exc, self.handshake_timeout_s))
            sock.close()
            return None
        finally:
            self._handshakes -= 1
        self._conns_open.add(conn)
        return conn

    async def _connect_inner(self, conn: _Outer, remote: str, cert: dict[str, object]) -> None:
        loop = asyncio.get_running_loop()
        name = f"{self._tag}-{next(self._conns)}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind("\0" + name)  # an abstract address: names this connection
            sock.setblocking(False)
            await loop.sock_connect(sock, self.inner_path)
        except BaseException:
            sock.close()
            raise
        conn.peer_key = f"unix-abstract:{name}"
        self._identities[conn.peer_key] = PeerIdentity(remote, common_name(cert), cert)
        if conn.gone():  # the client left during the connect
            sock.close()
            self.forget(conn)
            return
        inner, _ = await loop.create_unix_connection(lambda: _Inner(conn), sock=sock)
        conn.inner = inner
        conn.to_server.attach(inner)
        if conn.gone():  # the client left while the connection was made
            inner.close()


def _remote(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer)


def _reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError) or "taking longer" in str(exc):
        return f"TLS handshake not completed within {timeout_s:g}s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__
