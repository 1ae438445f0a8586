"""The TLS builder and front with real sockets and real certificates (no member):
handshake deadline and cap, hostname and IP SAN checks, identities seen by the server
behind, and the one-line configuration errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

import grpc
import pytest

from raftkv import certs
from raftkv.errors import ConfigError
from raftkv.server.config import ServerConfig
from raftkv.server.tls import ServerTLS, TLSInfo, TLSPolicy, hostname_matches
from raftkv.server.tls_front import TLSFront
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    certs.init_cluster(d, ["n1"], clients=["client"])
    ca = certs.load_ca(d)
    for name, hosts in (("web", ("app.example.com",)), ("far", ("127.0.0.9",))):
        issued = certs.issue(ca, name, hosts=hosts)
        certs.write_file(d / f"{name}.pem", issued.cert_pem())
        certs.write_file(d / f"{name}-key.pem", issued.key_pem())
    return d


def _info(d: Path, side: str = "client", **kw: object) -> TLSInfo:
    return TLSInfo(side, str(d / "n1.pem"), str(d / "n1-key.pem"), str(d / "ca.pem"),
                   True, **kw)  # type: ignore[arg-type]


def _client_ctx(d: Path, who: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(d / "ca.pem")
    if who:
        ctx.load_cert_chain(d / f"{who}.pem", d / f"{who}-key.pem")
    return ctx


class _Echo(rpc_pb2_grpc.KVServicer):
    """Puts the gRPC peer string of the caller into the response's header."""

    def __init__(self, front: list[TLSFront]) -> None:
        self.front = front

    async def Range(self, request: rpc_pb2.RangeRequest, context: grpc.aio.ServicerContext[
            object, object]) -> rpc_pb2.RangeResponse:
        ident = self.front[0].identity(context.peer())
        name = ident.common_name if ident is not None else "?"
        return rpc_pb2.RangeResponse(count=len(name), kvs=[])  # CN length, checked below


async def _serve(d: Path, tmp: Path, info: TLSInfo, **kw: float) -> tuple[
        grpc.aio.Server, TLSFront, int]:
    path = str(tmp / "inner.sock")
    server = grpc.aio.server()
    holder: list[TLSFront] = []
    rpc_pb2_grpc.add_KVServicer_to_server(_Echo(holder), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    front = TLSFront(ServerTLS(info, TLSPolicy()), path, "client", **kw)  # type: ignore[arg-type]
    holder.append(front)
    return server, front, await front.listen("127.0.0.1", 0)


def test_identity_of_the_caller_reaches_the_server_behind(d: Path, tmp_path: Path) -> None:
    async def go() -> None:
        server, front, port = await _serve(d, tmp_path, _info(d))
        creds = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes(),
                                             (d / "client-key.pem").read_bytes(),
                                             (d / "client.pem").read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            kv = rpc_pb2_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
            resp = await kv.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=5)
        assert resp.count == len("client")
        await front.close()
        await server.stop(0)

    asyncio.run(go())


def test_a_silent_connection_is_dropped_after_the_handshake_timeout(
        d: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> float:
        server, front, port = await _serve(d, tmp_path, _info(d), handshake_timeout_s=0.5)
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = loop.time()
        data = await asyncio.wait_for(reader.read(1), 5)  # never sends a ClientHello
        took = loop.time() - start
        assert data == b""
        writer.close()
        await front.close()
        await server.stop(0)
        return took

    with caplog.at_level(logging.WARNING, "raftkv.server.tls"):
        took = asyncio.run(go())
    assert 0.4 < took < 3.0
    assert any("not completed within 0.5s" in r.getMessage() for r in caplog.records)


def test_handshakes_in_progress_are_capped(d: Path, tmp_path: Path) -> None:
    async def go() -> list[bytes]:
        server, front, port = await _serve(d, tmp_path, _info(d), max_handshakes=2,
                                           handshake_timeout_s=5)
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        third = await asyncio.wait_for(conns[2][0].read(1), 3)  # closed at once
        for _, w in conns:
            w.close()
        await front.close()
        await server.stop(0)
        return [third]

    assert asyncio.run(go()) == [b""]


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            return "accepted" if s.recv(9)[3:4] == b"\x04" else "refused"
    except (OSError, IndexError):
        return "refused"


@pytest.mark.parametrize(("info_kw", "who", "expected"), [
    ({"allowed_hostnames": ("app.example.com",)}, "web", "accepted"),
    ({"allowed_hostnames": ("*.example.com",)}, "web", "refused"),  # a name, not a pattern
    ({"allowed_hostnames": ("other.example.com",)}, "web", "refused"),
    ({"allowed_hostnames": ("localhost",)}, "client", "refused"),  # no SANs at all
    ({"allowed_cns": ("web",)}, "web", "accepted"),
    ({"allowed_cns": ("web",)}, "client", "refused"),
])
def test_allowed_hostname_and_cn(d: Path, tmp_path: Path, info_kw: dict[str, object],
                                 who: str, expected: str) -> None:
    async def go() -> str:
        server, front, port = await _serve(d, tmp_path, _info(d, "peer", **info_kw))
        verdict = await asyncio.to_thread(_handshake, port, _client_ctx(d, who))
        await front.close()
        await server.stop(0)
        return verdict

    assert asyncio.run(go()) == expected


def test_a_peer_certificate_with_other_ip_sans_is_refused(d: Path) -> None:
    tls = ServerTLS(_info(d, "peer"), TLSPolicy())
    far = ssl._ssl._test_decode_cert(str(d / "far.pem"))  # type: ignore[attr-defined]
    near = ssl._ssl._test_decode_cert(str(d / "n1.pem"))  # type: ignore[attr-defined]
    assert tls.check_peer(near, "127.0.0.1") is None
    why = tls.check_peer(far, "127.0.0.1")
    assert why is not None
    assert "127.0.0.9" in why
    client_side = ServerTLS(_info(d, "client"), TLSPolicy())  # the rule is the peers' only
    assert client_side.check_peer(far, "127.0.0.1") is None


def test_hostname_matches_like_go() -> None:
    cert: dict[str, object] = {"subjectAltName": (("DNS", "*.example.com"), ("DNS", "db.local"),
                               ("IP Address", "10.0.0.1"), ("IP Address", "0:0:0:0:0:0:0:1"))}
    assert hostname_matches(cert, "a.example.com")
    assert hostname_matches(cert, "A.Example.COM.")
    assert not hostname_matches(cert, "a.b.example.com")
    assert not hostname_matches(cert, "example.com")
    assert hostname_matches(cert, "db.local")
    assert hostname_matches(cert, "10.0.0.1")
    assert hostname_matches(cert, "::1")
    assert not hostname_matches(cert, "10.0.0.2")


@pytest.mark.parametrize(("kw", "needle"), [
    ({"cert_file": "a", "key_file": "b", "tls_min_version": "TLS1.3",
      "cipher_suites": ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",)},
     "cipher suites cannot be configured when only TLS1.3 is enabled"),
    ({"cipher_suites": ("TLS_NOPE",)}, "unexpected TLS cipher suite 'TLS_NOPE'"),
    ({"tls_min_version": "TLS1.3", "tls_max_version": "TLS1.2"},
     "min version (TLS1.3) is greater than max version (TLS1.2)"),
    ({"tls_max_version": "SSL3"}, "--tls-max-version='SSL3'"),
    ({"peer_cert_file": "a", "peer_key_file": "b", "peer_trusted_ca_file": "c",
      "peer_cert_allowed_cn": ("n1",), "peer_cert_allowed_hostname": ("h",)},
     "cannot set both --peer-cert-allowed-cn and --peer-cert-allowed-hostname"),
    ({"cert_file": "a"}, "--cert-file and --key-file go together"),
    ({"cert_file": "a", "key_file": "b", "client_cert_auth": True},
     "--client-cert-auth needs --trusted-ca-file"),
    ({"cert_file": "a", "key_file": "b", "client_crl_file": "c"},
     "--client-crl-file checks client certificates"),
    ({"peer_trusted_ca_file": "c"}, "need --peer-cert-file and --peer-key-file"),
    ({"listen_peer_urls": ("https://127.0.0.1:2380",)},
     "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url"),
])
def test_bad_combinations_are_one_line_errors(kw: dict[str, object], needle: str) -> None:
    cfg = ServerConfig(name="n1", **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_plaintext_beside_certificates_is_a_warning() -> None:
    cfg = ServerConfig(name="n1", cert_file="a", key_file="b")
    cfg.validate()
    (warning,) = cfg.tls_plan()
    assert "ignoring key and cert files" in warning
    assert "http://127.0.0.1:2379" in warning


def test_unloadable_files_are_one_line_errors(d: Path, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pem"
    bad.write_text("not a certificate\n")
    cases = [
        (TLSInfo("client", str(d / "n1.pem"), str(d / "client-key.pem")), "cannot load"),
        (TLSInfo("client", str(bad), str(d / "n1-key.pem")), "garbage.pem"),
        (TLSInfo("client", str(d / "n1.pem"), str(d / "n1-key.pem"), str(bad)),
         "--trusted-ca-file"),
        (TLSInfo("peer", str(d / "n1.pem"), str(d / "n1-key.pem"), str(d / "ca.pem"),
                 crl_file=str(d / "ca.pem")), "--peer-crl-file"),
    ]
    for info, needle in cases:
        with pytest.raises(ConfigError) as err:
            ServerTLS(info, TLSPolicy())
        assert needle in str(err.value)
        assert "\n" not in str(err.value)
