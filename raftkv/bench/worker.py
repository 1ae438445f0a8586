"""A client process of a benchmark run: its share of the in-flight workers on its own gRPC
channels and event loop, timed against the run's common clock (``time.monotonic``, which is
system-wide on Linux, so every process measures the same window).

The parent and a child talk through two queues: the child puts ``("ready", proc)`` once
connected, waits for the start time on its control queue, sends ``("progress", proc, ops,
errors)`` a few times a second and finally ``("result", proc, ProcResult)``.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import grpc

from raftkv.bench import workloads
from raftkv.bench.config import BenchConfig
from raftkv.bench.workloads import DIRECT, Counters, GuardFailedError, key_of, make_op
from raftkv.client._transport import TLS
from raftkv.wire.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

PROGRESS_INTERVAL_S = 0.25
_TS = struct.Struct("!d")


@dataclass(slots=True)
class ProcResult:
    """What one client process measured inside the window."""

    ops: int = 0
    latencies: bytes = b""
    """``array('d')`` of seconds, one per completed operation (for ``watch``: per event)."""
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    window_s: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    failure: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    measure: float
    end: float


class _Stats:
    def __init__(self) -> None:
        self.lat = array("d")
        self.errors: dict[str, int] = {}
        self.total_ops = 0
        self.total_errors = 0

    def error(self, name: str, counted: bool) -> None:
        self.total_errors += 1
        if counted:
            self.errors[name] = self.errors.get(name, 0) + 1


def open_channel(cfg: BenchConfig, endpoint: str, *, auth: bool = True) -> grpc.aio.Channel:
    """A channel to ``endpoint``: plaintext, or TLS with the run's files (with
    ``insecure_skip_verify``, trusting the certificate the member presents now); with
    ``cfg.user``, every call carries the process's token."""
    icpt = [_Token(cfg, endpoint)] if cfg.user and auth and cfg.workload not in DIRECT \
        else None
    if not cfg.secure:
        return grpc.aio.insecure_channel(endpoint, interceptors=icpt)
    tls = TLS(ca_file=cfg.cacert, cert_file=cfg.cert, key_file=cfg.key,
              insecure_skip_verify=cfg.insecure_skip_verify)
    if not tls.insecure_skip_verify:
        return grpc.aio.secure_channel(endpoint, tls.credentials(), interceptors=icpt)
    creds, name = tls.pinned(endpoint, min(5.0, cfg.timeout_s))
    options = [("grpc.ssl_target_name_override", name)] if name else []
    return grpc.aio.secure_channel(endpoint, creds, options=options, interceptors=icpt)


_TOKENS: dict[tuple[str, tuple[str, ...]], str] = {}
"""This process's token per user and cluster (any member of it accepts it)."""
_PENDING: dict[tuple[str, tuple[str, ...]], asyncio.Future[str]] = {}


async def token_for(cfg: BenchConfig, endpoint: str, *, fresh: bool = False) -> str:
    """Authenticate ``cfg.user`` once per process (bcrypt is slow: never per request; one
    Authenticate however many calls start at once)."""
    assert cfg.user is not None
    key = (cfg.user, cfg.endpoints)
    token = None if fresh else _TOKENS.get(key)
    if token is not None:
        return token
    pending = _PENDING.get(key)
    if pending is not None and pending.get_loop() is asyncio.get_running_loop():
        return await asyncio.shield(pending)
    pending = _PENDING[key] = asyncio.get_running_loop().create_future()
    name, _, password = cfg.user.partition(":")
    try:
        async with open_channel(cfg, endpoint, auth=False) as ch:
            stub = rpc_pb2_grpc.AuthStub(ch)  # type: ignore[no-untyped-call]
            resp = await stub.Authenticate(rpc_pb2.AuthenticateRequest(
                name=name, password=password), timeout=cfg.timeout_s)
    except BaseException as exc:
        pending.set_exception(exc)
        pending.exception()  # retrieved: no "never retrieved" warning
        del _PENDING[key]
        raise
    _TOKENS[key] = token = str(resp.token)
    pending.set_result(token)
    del _PENDING[key]
    return token


class _Token(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
             grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """Adds the token to every call's metadata."""

    def __init__(self, cfg: BenchConfig, endpoint: str) -> None:
        self.cfg = cfg
        self.endpoint = endpoint

    async def _details(self, d: Any) -> Any:
        token = await token_for(self.cfg, self.endpoint)
        md = grpc.aio.Metadata(*(d.metadata or ()), ("token", token))
        return grpc.aio.ClientCallDetails(d.method, d.timeout, md, d.credentials,
                                          d.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any, details: Any,
                                    request: Any) -> Any:
        return await continuation(await self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any,
                                     request: Any) -> Any:
        return await continuation(await self._details(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any,
                                     request_iterator: Any) -> Any:
        return await continuation(await self._details(details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any, details: Any,
                                      request_iterator: Any) -> Any:
        return await continuation(await self._details(details), request_iterator)


def child_main(cfg: BenchConfig, proc: int, control: Any, results: Any) -> None:
    """Entry point of a spawned client process."""
    try:
        result = asyncio.run(_run(cfg, proc, control, results))
    except Exception as exc:  # reported to the parent as a one-line failure
        result = ProcResult(failure=f"{type(exc).__name__}: {exc}")
        results.put(("ready", proc))
    results.put(("result", proc, result))


async def _run(cfg: BenchConfig, proc: int, control: Any, results: Any) -> ProcResult:
    channels = [open_channel(cfg, ep) for ep in cfg.endpoints for _ in range(cfg.conns)]
    try:
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), cfg.timeout_s)
        if cfg.user:  # before the clock starts
            workloads.METADATA = (("token", await token_for(cfg, cfg.endpoints[0])),)
        rng = random.Random(proc * 1_000_003 + time.monotonic_ns())
        counters = Counters()
        stats = _Stats()
        n = cfg.share(cfg.concurrency, proc)
        if cfg.workload == "watch":
            tasks_fn = await _watch_tasks(cfg, proc, channels, rng, stats, counters)
        else:
            ops = [await make_op(cfg, channels[(proc + i) % len(channels)], rng, counters)
                   for i in range(n)]
            tasks_fn = lambda w: [_loop(op, w, stats) for op in ops]  # noqa: E731
        results.put(("ready", proc))
        loop = asyncio.get_running_loop()
        start = await loop.run_in_executor(None, control.get)
        w = Window(start, start + cfg.warmup_s, start + cfg.warmup_s + cfg.duration_s)
        await asyncio.sleep(max(0.0, w.start - time.monotonic()))
        reporter = asyncio.create_task(_report(proc, stats, results))
        cpu = asyncio.create_task(_cpu_in(w))
        await asyncio.gather(*tasks_fn(w))
        reporter.cancel()
        return ProcResult(ops=len(stats.lat), latencies=stats.lat.tobytes(),
                          errors=stats.errors, cpu_s=await cpu, window_s=w.end - w.measure,
                          counters=counters.values)
    finally:
        for ch in channels:
            await ch.close()


async def _cpu_in(w: Window) -> float:
    """CPU seconds (user + system, all threads) this process used inside the window."""
    await asyncio.sleep(max(0.0, w.measure - time.monotonic()))
    t0 = time.process_time()
    await asyncio.sleep(max(0.0, w.end - time.monotonic()))
    return time.process_time() - t0


async def _report(proc: int, stats: _Stats, results: Any) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        results.put(("progress", proc, stats.total_ops, stats.total_errors))


async def _loop(op: Any, w: Window, stats: _Stats) -> None:
    """Repeat ``op`` until the window ends; record those started inside the window."""
    clock = time.monotonic
    lat = stats.lat
    while True:
        t0 = clock()
        if t0 >= w.end:
            return
        try:
            await op()
        except grpc.aio.AioRpcError as exc:
            stats.error(exc.code().name, t0 >= w.measure)
            await asyncio.sleep(0.01)  # an endpoint refusing at once must not spin
            continue
        except GuardFailedError:
            stats.error("GUARD_FAILED", t0 >= w.measure)
            continue
        stats.total_ops += 1
        if t0 >= w.measure:
            lat.append(clock() - t0)


async def _watch_tasks(cfg: BenchConfig, proc: int, channels: list[grpc.aio.Channel],
                       rng: random.Random, stats: _Stats, counters: Counters) -> Any:
    """Open this process's watch streams; return the writer + reader tasks to run."""
    prefix = cfg.prefix + b"w%02d/" % proc
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    streams = []
    for i in range(cfg.share(cfg.watchers, proc)):
        stub = rpc_pb2_grpc.WatchStub(channels[i % len(channels)])  # type: ignore[no-untyped-call]
        call = stub.Watch()
        await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
            key=prefix, range_end=end)))
        created = await asyncio.wait_for(call.read(), cfg.timeout_s)
        if not getattr(created, "created", False):
            raise RuntimeError(f"watch on {prefix!r} was not created")
        streams.append(call)
    pad = rng.randbytes(cfg.value_size - _TS.size)
    n = cfg.share(cfg.concurrency, proc)

    def tasks(w: Window) -> list[Any]:
        writers = [_loop(_watch_put(cfg, channels[i % len(channels)], prefix, rng, pad,
                                    counters, w), w, _Stats()) for i in range(n)]
        return [*writers, *(_read_events(call, w, stats) for call in streams)]
    return tasks


def _watch_put(cfg: BenchConfig, channel: grpc.aio.Channel, prefix: bytes,
               rng: random.Random, pad: bytes, counters: Counters, w: Window) -> Any:
    kv = rpc_pb2_grpc.KVStub(channel)  # type: ignore[no-untyped-call]
    keys = cfg.keys

    async def put() -> None:
        t0 = time.monotonic()
        key = key_of(cfg, rng.randrange(keys)).replace(cfg.prefix, prefix, 1)
        await kv.Put(rpc_pb2.PutRequest(key=key, value=_TS.pack(t0) + pad),
                     timeout=cfg.timeout_s)
        if w.measure <= t0 < w.end:
            counters.add("writes")
    return put


async def _read_events(call: Any, w: Window, stats: _Stats) -> None:
    """Record the delivery lag of every event the stream brings until the window ends
    (plus a grace of a second for events written just before the end)."""
    clock = time.monotonic
    lat = stats.lat
    unpack = _TS.unpack_from
    try:
        while True:
            left = w.end + 1.0 - clock()
            if left <= 0:
                return
            try:
                resp = await asyncio.wait_for(call.read(), left)
            except TimeoutError:
                return
            if resp is grpc.aio.EOF:
                stats.error("WATCH_CLOSED", True)
                return
            now = clock()
            for ev in resp.events:
                sent = unpack(ev.kv.value)[0]
                stats.total_ops += 1
                if w.measure <= sent < w.end:
                    lat.append(now - sent)
    finally:
        call.cancel()
