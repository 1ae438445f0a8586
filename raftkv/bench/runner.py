"""Runs a benchmark: checks the endpoints, preloads keys, spawns the client processes,
starts them on one clock, shows progress and merges what they measured."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import grpc

from raftkv.bench import workloads
from raftkv.bench.config import BenchConfig
from raftkv.bench.report import BenchResult, merge
from raftkv.bench.worker import ProcResult, child_main, open_channel, token_for
from raftkv.bench.workloads import preload

START_DELAY_S = 0.3
"""Between telling the client processes the start time and that time."""
READY_TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """The run could not be made (unreachable endpoint, failed client process); one line."""


def run(cfg: BenchConfig, *, progress: bool = False) -> BenchResult:
    """Run ``cfg`` (validated here) and return its figures.

    Raises:
        BenchConfigError: a bad setting.
        BenchError: an endpoint does not answer, or a client process failed.
    """
    cfg.validate()
    asyncio.run(_prepare(cfg))
    ctx = mp.get_context("spawn")  # grpc does not survive fork
    control: Any = ctx.Queue()
    results: Any = ctx.Queue()
    procs = [ctx.Process(target=child_main, args=(cfg, i, control, results),
                         name=f"raftkv-bench-{i}", daemon=True) for i in range(cfg.procs)]
    for p in procs:
        p.start()
    try:
        parts = _drive(cfg, procs, control, results, progress)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
    failed = [p.failure for p in parts if p.failure]
    if failed:
        raise BenchError(f"a client process failed: {failed[0]}")
    return merge(cfg, parts)


async def _prepare(cfg: BenchConfig) -> None:
    """Fail fast on an endpoint that does not answer; preload the keys a read needs."""
    for ep in cfg.endpoints:
        try:
            channel = open_channel(cfg, ep)
        except OSError as exc:  # --insecure-skip-tls-verify: no TLS handshake to peek at
            raise BenchError(f"endpoint {ep}: no TLS handshake ({exc}); is the cluster "
                             f"running? check --endpoints") from None
        async with channel as ch:
            try:
                await asyncio.wait_for(ch.channel_ready(), min(5.0, cfg.timeout_s))
            except TimeoutError:
                hint = _tls_hint(cfg, ep) or ("is the cluster running? check --endpoints"
                                              + (" and the TLS flags" if cfg.secure else ""))
                raise BenchError(f"endpoint {ep} does not answer ({hint})") from None
            if cfg.workload == "get" and cfg.preload and ep == cfg.endpoints[0]:
                workloads.METADATA = None
                if cfg.user:  # a token of this run's own (one cached for another may be gone)
                    workloads.METADATA = (("token", await token_for(cfg, ep, fresh=True)),)
                try:
                    await preload(cfg, ch)
                except grpc.aio.AioRpcError as exc:
                    raise BenchError(f"preloading {cfg.keys} keys through {ep} failed: "
                                     f"{exc.code().name} {exc.details()}") from None


def _tls_hint(cfg: BenchConfig, endpoint: str) -> str:
    """What a TLS handshake with the same settings says is wrong (see raftkv.cli)."""
    from raftkv.cli._conn import Options, tls_diagnosis

    scheme = "https://" if cfg.secure else ""
    opts = Options((scheme + endpoint,), "table", cfg.timeout_s, cfg.timeout_s, cfg.cacert,
                   cfg.cert, cfg.key, cfg.insecure_skip_verify)
    return tls_diagnosis(endpoint, opts) or ""


def _drive(cfg: BenchConfig, procs: list[Any], control: Any, results: Any,
           progress: bool) -> list[ProcResult]:
    parts: dict[int, ProcResult] = {}
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while ready < cfg.procs:
        msg = _get(results, deadline, procs, "connect")
        if msg[0] == "ready":
            ready += 1
        elif msg[0] == "result":
            parts[msg[1]] = msg[2]
    start = time.monotonic() + START_DELAY_S
    for _ in procs:
        control.put(start)
    total_s = cfg.warmup_s + cfg.duration_s
    deadline = start + total_s + cfg.timeout_s + 30.0
    counts: dict[int, tuple[int, int]] = {}
    with _display(progress, total_s) as show:
        while len(parts) < cfg.procs:
            msg = _get(results, deadline, procs, "finish")
            if msg[0] == "progress":
                counts[msg[1]] = (msg[2], msg[3])
                if show is not None:
                    show(time.monotonic() - start, counts)
            elif msg[0] == "result":
                parts[msg[1]] = msg[2]
    return [parts[i] for i in sorted(parts)]


def _get(results: Any, deadline: float, procs: list[Any], what: str) -> Any:
    while True:
        try:
            return results.get(timeout=0.1)
        except queue.Empty:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"client processes did not {what} in time")
        dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
        if dead:
            raise BenchError(f"client process {dead[0].name} exited with {dead[0].exitcode}")


def _display(enabled: bool, total_s: float) -> AbstractContextManager[Any]:
    """A rich progress bar on stderr (ops so far, current rate, errors), or nothing."""
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("starting", total=total_s)
    last = [0.0, 0]

    def show(elapsed: float, counts: dict[int, tuple[int, int]]) -> None:
        ops = sum(c[0] for c in counts.values())
        errs = sum(c[1] for c in counts.values())
        dt = elapsed - last[0]
        if dt >= 0.5:
            rate = (ops - last[1]) / dt
            last[:] = [elapsed, ops]
            bar.update(task, description=f"{ops:>9,} ops  {rate:>8,.0f}/s  {errs} errors")
        bar.update(task, completed=min(elapsed, total_s))

    class _Ctx:
        def __enter__(self) -> Any:
            bar.start()
            return show

        def __exit__(self, *exc: object) -> None:
            bar.stop()
    return _Ctx()
