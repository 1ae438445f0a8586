"""``--auth`` without a cluster: the grant per workload, the stale-token rule, and the raw
channels' tokens against a fake member (in-process gRPC) that can invalidate every token
or refuse to authenticate: a call refused for its token is sent again with a new one (one
Authenticate for all the calls that failed with the same token), and a write for which no
token could be had is a ``fail``."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from chaos.auth import (
    ClusterAuth,
    Credentials,
    NotSent,
    Tokens,
    auth_errors,
    expected,
    open_channel,
    prefix_end,
    stale_token,
)
from chaos.client import Client, describe_error
from chaos.history import EventType, Recorder, Value
from chaos.run_cli import build_parser, run_config, run_main
from chaos.runner import auth_check
from chaos.workloads import WORKLOADS, key_prefix
from raftkv import errors as e
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


def test_each_workload_is_granted_exactly_its_prefix() -> None:
    assert {w: key_prefix(w) for w in WORKLOADS} == {
        "register": b"chaos/reg/", "bank": b"chaos/bank/", "lock": b"chaos/lock/",
        "set": b"chaos/set/"}
    auth = ClusterAuth.new(key_prefix("lock"))
    grant = dict(auth.steps())["RoleGrantPermission"]
    assert (grant.name, grant.perm.key, grant.perm.range_end) == ("chaos", b"chaos/lock/",
                                                                  b"chaos/lock0")
    assert [m for m, _ in auth.steps()][-1] == "AuthEnable"
    assert auth.server_flags() == ["--bcrypt-cost", "4"]
    assert ClusterAuth.new(b"p/", token_ttl_s=3).server_flags()[-2:] == ["--auth-token-ttl", "3"]
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff") == b"\0"


def test_auth_json_has_the_passwords_and_summary_has_none(tmp_path: Path) -> None:
    auth = ClusterAuth.new(b"chaos/reg/")
    auth.write(tmp_path / "auth.json")
    assert (tmp_path / "auth.json").stat().st_mode & 0o777 == 0o600
    data = json.loads((tmp_path / "auth.json").read_text())
    assert data["passwords"] == {"root": auth.root.password, "chaos": auth.user.password}
    assert auth.root.password not in json.dumps(auth.summary())


def _err(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_which_refusals_a_new_token_cures() -> None:
    assert stale_token(_err(grpc.StatusCode.UNAUTHENTICATED, e.AUTH_INVALID_TOKEN))
    assert stale_token(_err(grpc.StatusCode.INVALID_ARGUMENT, e.AUTH_USER_EMPTY))
    assert stale_token(_err(grpc.StatusCode.INVALID_ARGUMENT, e.AUTH_OLD_REVISION))
    assert not stale_token(_err(grpc.StatusCode.PERMISSION_DENIED, e.AUTH_PERMISSION_DENIED))
    assert not stale_token(_err(grpc.StatusCode.UNAVAILABLE, e.AUTH_INVALID_TOKEN))
    assert not stale_token(NotSent(e.AUTH_INVALID_TOKEN, grpc.StatusCode.UNAUTHENTICATED))
    assert not stale_token(TimeoutError())


def test_auth_errors_are_counted_by_message() -> None:
    errors = ["PERMISSION_DENIED: etcdserver: permission denied",
              "UNAUTHENTICATED: etcdserver: invalid auth token",
              describe_error(NotSent("Authenticate failed: UNAVAILABLE: etcdserver: "
                                     "invalid auth token")),
              "InvalidAuthTokenError: etcdserver: invalid auth token",
              "DEADLINE_EXCEEDED: Deadline Exceeded", None]
    assert auth_errors(errors) == {"invalid auth token": 2, "not sent": 1,
                                   "permission denied": 1}


def test_the_auth_flags_reach_the_run_config(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = run_config(build_parser().parse_args(["--out", "o", "--auth", "--tls",
                                                "--auth-token-ttl", "5"]))
    assert (cfg.auth, cfg.tls, cfg.auth_token_ttl_s) == (True, True, 5)
    assert run_config(build_parser().parse_args(["--out", "o"])).auth is False
    assert run_main(["--out", "o", "--auth-token-ttl", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--auth-token-ttl needs --auth" in err[0]


class FakeMember(rpc_pb2_grpc.AuthServicer, rpc_pb2_grpc.KVServicer,
                 rpc_pb2_grpc.LeaseServicer):
    """Issues tokens ``t1``, ``t2``, ...; refuses a KV call without a live token as a
    member does; ``invalidate()`` kills every token, ``auth_down`` refuses Authenticate."""

    def __init__(self) -> None:
        self.issued = 0
        self.live: set[str] = set()
        self.auth_down = False
        self.puts: list[tuple[bytes, str]] = []
        self.keepalive_tokens: list[str] = []

    def invalidate(self) -> None:
        self.live.clear()

    async def Authenticate(self, request: rpc_pb2.AuthenticateRequest, context: Ctx
                           ) -> rpc_pb2.AuthenticateResponse:
        if self.auth_down or (request.name, request.password) != ("chaos", "pw"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out")
        self.issued += 1
        token = f"t{self.issued}"
        self.live.add(token)
        return rpc_pb2.AuthenticateResponse(token=token)

    async def _caller(self, context: Ctx) -> str:
        token = dict(context.invocation_metadata() or ()).get("token")
        if token is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.AUTH_USER_EMPTY)
        if token not in self.live:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, e.AUTH_INVALID_TOKEN)
        return str(token)

    async def Put(self, request: rpc_pb2.PutRequest, context: Ctx) -> rpc_pb2.PutResponse:
        token = await self._caller(context)
        await asyncio.sleep(0.01)
        self.puts.append((request.key, token))
        return rpc_pb2.PutResponse()

    async def LeaseKeepAlive(self, request_iterator: Any, context: Ctx
                             ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        self.keepalive_tokens.append(await self._caller(context))
        async for req in request_iterator:
            yield rpc_pb2.LeaseKeepAliveResponse(ID=req.ID, TTL=2)


def with_member(test: Callable[[FakeMember, str], Awaitable[None]]) -> None:
    async def main() -> None:
        member = FakeMember()
        server = grpc.aio.server()
        rpc_pb2_grpc.add_AuthServicer_to_server(member, server)  # type: ignore[no-untyped-call]
        rpc_pb2_grpc.add_KVServicer_to_server(member, server)  # type: ignore[no-untyped-call]
        rpc_pb2_grpc.add_LeaseServicer_to_server(member, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            await test(member, f"127.0.0.1:{port}")
        finally:
            await server.stop(None)
    asyncio.run(main())


def _client(target: str, rec: Recorder, timeout_s: float = 2.0) -> Client:
    return Client(0, 0, target, rec, concurrency=1, timeout_s=timeout_s, rng=random.Random(1),
                  auth=Credentials("chaos", "pw"))


async def _put(c: Client, key: bytes) -> EventType:
    async def call() -> Value:
        await c.kv.Put(rpc_pb2.PutRequest(key=key, value=b"v"), timeout=c.timeout_s)
        return None
    status, _ = await c.op("write", key.decode(), 1, call)
    return status


def test_a_stale_token_is_replaced_and_the_call_sent_again() -> None:
    async def test(member: FakeMember, target: str) -> None:
        rec = Recorder(time.monotonic_ns)
        c = _client(target, rec)
        await c.authenticate(2.0)
        assert await _put(c, b"a") is EventType.OK
        member.invalidate()  # a restart, a partition, the TTL: every token refused
        results = await asyncio.gather(*(_put(c, f"b{i}".encode()) for i in range(5)))
        assert results == [EventType.OK] * 5
        assert member.issued == 2  # one Authenticate for the five calls refused with t1
        assert member.puts[0] == (b"a", "t1")
        assert sorted(member.puts[1:]) == [(f"b{i}".encode(), "t2") for i in range(5)]
        assert c.tokens is not None
        assert c.tokens.counts() == {"authenticated": 1, "reauthenticated": 1, "failed": 0}
        await c.close()
    with_member(test)


def test_a_write_that_could_get_no_new_token_is_a_fail() -> None:
    async def test(member: FakeMember, target: str) -> None:
        rec = Recorder(time.monotonic_ns)
        c = _client(target, rec, timeout_s=1.0)
        assert await _put(c, b"a") is EventType.OK  # authenticates at its first call
        member.invalidate()
        member.auth_down = True  # the member cannot issue tokens (cut off from a quorum)
        assert await _put(c, b"b") is EventType.FAIL  # refused, and not sent again
        assert c.process == 0  # a definite outcome: the same process goes on
        assert member.puts == [(b"a", "t1")]
        error = rec.history().operations[-1].error or ""
        assert "not sent, no token: Authenticate failed: UNAVAILABLE" in error
        member.auth_down = False
        assert await _put(c, b"c") is EventType.OK
        assert c.tokens is not None
        assert c.tokens.counts()["failed"] == 1
        await c.close()
    with_member(test)


def test_streams_carry_the_token() -> None:
    async def test(member: FakeMember, target: str) -> None:
        tokens = Tokens(Credentials("chaos", "pw"))
        channel = open_channel(target, None, tokens)
        stub = rpc_pb2_grpc.LeaseStub(channel)  # type: ignore[no-untyped-call]

        async def requests() -> AsyncIterator[rpc_pb2.LeaseKeepAliveRequest]:
            yield rpc_pb2.LeaseKeepAliveRequest(ID=7)

        got = [r.ID async for r in stub.LeaseKeepAlive(requests())]
        assert got == [7]
        assert member.keepalive_tokens == ["t1"]
        await channel.close()
    with_member(test)


def test_the_auth_check() -> None:
    enforced = {**expected(False), "member": "n2"}
    ok = auth_check(enforced, ["UNAVAILABLE: connection refused", None])
    assert ok.valid is True
    assert ok.counts["refused_no_token"] == ok.counts["refused_outside_the_grant"] == 1
    # under mutual TLS a tokenless request is the certificate's CN, which is no user
    assert auth_check(enforced, [], mtls=True).valid is False
    assert auth_check({**expected(True), "member": "n1"}, [], mtls=True).valid is True
    assert "on n2" in ok.text
    denied = auth_check(enforced, ["PERMISSION_DENIED: etcdserver: permission denied"])
    assert denied.valid is False
    assert denied.counts["permission_denied"] == 1
    open_door = auth_check({"no token": "accepted", "outside the grant": "accepted",
                            "member": "n1"}, [])
    assert open_door.valid is False
    assert "NOT enforced" in open_door.text
