"""One harness run: cluster up, workload and nemesis together, heal, recover, check, report.

:func:`run` is synchronous and owns cleanup: whatever happens (a violation, an exception,
Ctrl-C, SIGTERM), every member process is stopped and every namespace, bridge, rule and
proxy the run created is removed before it returns. The asynchronous part runs on one
event loop: the clients, the nemesis and (for the proxy backend) the proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaos.auth import ClusterAuth, auth_errors, expected
from chaos.client import Client
from chaos.cluster import ChaosCluster, ClusterError
from chaos.history import EventType, History, Recorder
from chaos.nemesis import Nemesis
from chaos.net import Network, Unsupported
from chaos.runstate import RunState, new_run_id
from chaos.tls import rejections
from chaos.workloads import Check, Workload, key_prefix, make
from raftkv.errors import ConfigError

__all__ = ["RAFTKV_CLIENT_WORKLOADS", "RunConfig", "RunError", "auth_check", "run"]

RAFTKV_CLIENT_WORKLOADS = ("set", "register")
"""The workloads that can issue their operations through raftkv.client (``--client``)."""

log = logging.getLogger("chaos.runner")


class RunError(Exception):
    """The run itself could not be done (exit status 2)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; the CLI flags map one to one."""

    out: Path
    nodes: int = 5
    workload: str = "register"
    nemesis: tuple[str, ...] = ("partition", "kill", "pause")
    time_limit_s: float = 60.0
    rate: float = 200.0
    concurrency: int = 10
    seed: int = 0
    backend: str = "auto"
    op_timeout_s: float = 2.0
    startup_timeout_s: float = 60.0
    recovery_timeout_s: float = 60.0
    keys: int = 30
    client: str = "raw"
    tls: bool = False
    auth: bool = False
    auth_token_ttl_s: int | None = None
    failpoints: tuple[str, ...] = ()
    server_flags: tuple[str, ...] = field(default=("--heartbeat-interval", "100",
                                                   "--election-timeout", "1000"))


@dataclass
class Outcome:
    """What :func:`run` found."""

    exit_code: int
    results: dict[str, object]
    checks: list[Check]


def make_backend(cfg: RunConfig, state: RunState) -> Network:
    """The network backend ``cfg.backend`` names (``auto``: netns when it can run)."""
    from chaos.net.netns import NetnsBackend, netns_unavailable
    from chaos.net.proxy import ProxyBackend

    why = netns_unavailable()
    kind = cfg.backend
    if kind == "auto":
        kind = "netns" if why is None else "proxy"
    if kind == "netns":
        if why is not None:
            raise RunError(why)
        return NetnsBackend(state.prefix, cfg.nodes)
    if kind == "proxy":
        return ProxyBackend(cfg.nodes)
    raise RunError(f"--backend {cfg.backend!r} is not one of netns, proxy, auto")


def run(cfg: RunConfig) -> Outcome:
    """Run the harness once (see the module docstring).

    Raises:
        RunError: the run could not be done (the reason is one line).
    """
    if cfg.client == "raftkv" and cfg.workload not in RAFTKV_CLIENT_WORKLOADS:
        raise RunError(f"--client raftkv is for the {' and '.join(RAFTKV_CLIENT_WORKLOADS)} "
                       f"workloads, not {cfg.workload}; use --client raw")
    cfg.out.mkdir(parents=True, exist_ok=True)
    state = RunState(new_run_id(), str(cfg.out.resolve()), cfg.backend)
    net = make_backend(cfg, state)
    state.backend = net.name
    unsupported, why, other = {"netns": ("slow", "no netem qdisc on this kernel", "proxy"),
                               "proxy": ("loss", "it has no packets to drop", "netns")}[net.name]
    if unsupported in cfg.nemesis:
        raise RunError(f"--nemesis {unsupported} is not possible with the {net.name} backend "
                       f"({why}); use --backend {other}")
    state.save()
    cluster = ChaosCluster(net, cfg.out.resolve() / "cluster", cfg.nodes, state,
                           flags=cfg.server_flags, failpoints=cfg.failpoints)
    try:
        setup = getattr(net, "setup")  # noqa: B009 - both backends have it; not in the Protocol
        try:
            setup()
        except (RuntimeError, OSError) as exc:
            raise RunError(f"network setup failed: {exc}") from exc
        if cfg.tls:
            try:
                cluster.enable_tls(cfg.out.resolve() / "tls")
            except (ConfigError, OSError) as exc:
                raise RunError(f"could not make the run's certificates: {exc}") from exc
        if cfg.auth:
            auth = ClusterAuth.new(key_prefix(cfg.workload), token_ttl_s=cfg.auth_token_ttl_s)
            cluster.enable_auth(auth)
            auth.write(cfg.out / "auth.json")
        outcome = asyncio.run(_main(cfg, net, cluster, state))
        outcome.results["run_id"] = state.run_id
        (cfg.out / "results.json").write_text(json.dumps(outcome.results, indent=2) + "\n")
        return outcome
    finally:
        cluster.stop_all()
        net.teardown()
        state.remove()


async def _main(cfg: RunConfig, net: Network, cluster: ChaosCluster,
                state: RunState) -> Outcome:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await net.start()
        cluster.start_all()
        try:
            await cluster.wait_healthy(cfg.startup_timeout_s)
        except ClusterError as exc:
            raise RunError(f"cluster did not start: {exc}") from exc
        enforced: dict[str, str] = {}
        if cluster.auth is not None:
            try:
                enforced = await cluster.setup_auth(cfg.startup_timeout_s)
                await cluster.wait_healthy(cfg.startup_timeout_s)  # root's token everywhere
            except ClusterError as exc:
                raise RunError(f"auth: {exc}") from exc
        with (cfg.out / "history.jsonl").open("w") as sink:
            recorder = Recorder(time.monotonic_ns, sink)
            return await _session(cfg, cluster, recorder, state, enforced)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await cluster.close()
        await net.stop()


def _clients(cfg: RunConfig, cluster: ChaosCluster, recorder: Recorder, first: int,
             count: int, rng: random.Random) -> list[Client]:
    n = len(cluster.members)
    endpoints = [cluster.endpoint(m) for m in cluster.members]
    return [Client(first + i, i % n, endpoints[i % n], recorder, concurrency=max(count, 1),
                   timeout_s=cfg.op_timeout_s, rng=random.Random(rng.random()),
                   library=cfg.client, others=endpoints[i % n + 1:] + endpoints[:i % n],
                   tls=cluster.tls, auth=cluster.auth.user if cluster.auth is not None else None)
            for i in range(count)]


async def _authenticate(clients: Sequence[Client], timeout_s: float) -> None:
    """Each client authenticates once before the workload starts (retried; one that still
    cannot authenticates at its first call instead)."""
    async def one(c: Client) -> None:
        last: Exception | None = None
        for _ in range(10):
            try:
                await c.authenticate(timeout_s)
                return
            except Exception as exc:  # retried, then left to the first call
                last = exc
                await asyncio.sleep(0.3)
        log.warning("client %d could not authenticate before the start: %s", c.number, last)
    await asyncio.gather(*(one(c) for c in clients))


async def _session(cfg: RunConfig, cluster: ChaosCluster, recorder: Recorder,
                   state: RunState, enforced: dict[str, str]) -> Outcome:
    del state
    rng = random.Random(cfg.seed)
    workload = make(cfg.workload, random.Random(f"{cfg.seed}-workload"), keys=cfg.keys)
    clients = _clients(cfg, cluster, recorder, 0, cfg.concurrency, rng)
    admin = _clients(cfg, cluster, recorder, 10_000, len(cluster.members), rng)
    try:
        if cluster.auth is not None:
            await _authenticate([*clients, *admin], max(cfg.op_timeout_s, 5.0))
        # the setup (and the set workload's watch) starts on the leader: the member the
        # nemeses most often kill, pause or isolate
        leader = await cluster.leader()
        first = leader.index if leader is not None else 0
        await _setup_workload(workload, [*admin[first:], *admin[:first]])
        nemesis = Nemesis(cluster, recorder, random.Random(f"{cfg.seed}-nemesis"),
                          cfg.nemesis)
        started = time.monotonic()
        nem_task = asyncio.create_task(nemesis.run())
        deadline = asyncio.get_running_loop().time() + cfg.time_limit_s
        try:
            await asyncio.gather(*(_client_loop(c, workload, deadline, cfg) for c in clients))
        finally:
            nem_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await nem_task
        ran_s = time.monotonic() - started
        recovery = await _heal_and_recover(cfg, cluster, recorder)
        if recovery.valid:
            await workload.final(admin)
        history = recorder.history()
        checks = [*workload.check(history), recovery]
        if cluster.auth is not None:
            checks.append(auth_check(enforced, [op.error for op in history
                                                if isinstance(op.process, int)],
                                     mtls=cluster.tls is not None))
    finally:
        await workload.close()
        for c in (*clients, *admin):
            await c.close()
    tokens: dict[str, int] = {}
    for c in (*clients, *admin):
        for k, v in (c.tokens.counts() if c.tokens is not None else {}).items():
            tokens[k] = tokens.get(k, 0) + v
    return _outcome(cfg, cluster, history, checks, ran_s, nemesis.faults, tokens)


def auth_check(enforced: dict[str, str], errors: Sequence[str | None], *,
               mtls: bool = False) -> Check:
    """``--auth``'s check: before the workload, the leader refused a request without a token
    and the workload user's write just past its grant (:func:`chaos.auth.expected`); during
    it, no client operation was refused ``permission denied`` (the grant covers every key
    the workload uses)."""
    want = expected(mtls)
    counts = auth_errors(errors)
    denied = counts.get("permission denied", 0)
    probe = {k: v for k, v in enforced.items() if k != "member"}
    lines = [f"before the workload, on {enforced.get('member', '?')}: "
             + "; ".join(f"{what}: {probe.get(what, 'not asked')!r}" for what in want)]
    if probe != want:
        lines.append("auth is NOT enforced as set up: expected "
                     + "; ".join(f"{k}: {v!r}" for k, v in want.items()))
    lines.append(f"client operations refused by auth: {counts or 'none'}"
                 + (" — permission denied means the grant misses a key the workload uses, "
                    "or the member checked it wrongly" if denied else ""))
    stale = sum(counts.get(m, 0) for m in ("invalid auth token", "user name is empty",
                                           "revision of auth store is old"))
    return Check("auth", probe == want and denied == 0,
                 {**{f"refused_{k.replace(' ', '_')}": int(probe.get(k) == v)
                     for k, v in want.items()},
                  "permission_denied": denied, "not_sent": counts.get("not sent", 0),
                  "stale_token": stale},
                 "\n".join(lines))


async def _setup_workload(workload: Workload, admin: Sequence[Client]) -> None:
    last: Exception | None = None
    for attempt in range(20):
        try:
            await workload.setup(admin[attempt % len(admin)])
            return
        except Exception as exc:  # retried, then reported as one line
            last = exc
            await asyncio.sleep(0.5)
    raise RunError(f"could not write the {workload.name} workload's initial state: {last}")


async def _client_loop(client: Client, workload: Workload, deadline: float,
                       cfg: RunConfig) -> None:
    loop = asyncio.get_running_loop()
    interval = cfg.concurrency / max(cfg.rate, 0.001)
    next_at = loop.time() + client.rng.uniform(0, interval)
    while True:
        now = loop.time()
        if next_at > now:
            await asyncio.sleep(next_at - now)
        if loop.time() >= deadline:
            return
        await workload.step(client)
        next_at = max(next_at + interval * client.rng.uniform(0.5, 1.5), loop.time())


async def _heal_and_recover(cfg: RunConfig, cluster: ChaosCluster,
                            recorder: Recorder) -> Check:
    """Heal every fault, repair membership, and wait for every member to serve."""
    inv = recorder.invoke("nemesis", "heal", None, None)
    started = time.monotonic()
    text = "every member answered linearizable reads after healing"
    valid = True
    try:
        await cluster.net.heal()
        for m in cluster.members:
            cluster.resume(m)
        await cluster.reconcile(cfg.recovery_timeout_s)
        await cluster.wait_healthy(cfg.recovery_timeout_s)
    except (ClusterError, Unsupported) as exc:
        valid, text = False, f"the cluster did not recover: {exc}"
    took = time.monotonic() - started
    recorder.complete(inv, EventType.INFO, {"recovered": valid, "seconds": round(took, 2)})
    return Check("recovery", valid, {"seconds_to_recover": round(took)}, text)


def _outcome(cfg: RunConfig, cluster: ChaosCluster, history: History, checks: list[Check],
             ran_s: float, faults: Sequence[str], tokens: dict[str, int]) -> Outcome:
    from chaos.report import write_report

    verdicts = [c.valid for c in checks if not c.finding]
    if all(v is True for v in verdicts):
        code = 0
    elif any(v is False for v in verdicts):
        code = 1
    else:
        code = 2
    client = [op for op in history if isinstance(op.process, int)]
    results: dict[str, object] = {
        "valid": code == 0, "exit_code": code, "workload": cfg.workload,
        "nemesis": list(cfg.nemesis), "nodes": cfg.nodes, "seed": cfg.seed,
        "backend": cluster.net.name, "time_limit_s": cfg.time_limit_s, "rate": cfg.rate,
        "concurrency": cfg.concurrency, "client": cfg.client, "ran_s": round(ran_s, 1),
        "failpoints": list(cfg.failpoints), "tls": cfg.tls, "auth": cfg.auth,
        "ops": {"total": len(client),
                **{s: sum(op.status.value == s for op in client) for s in ("ok", "fail", "info")}},
        "faults": {k: faults.count(k) for k in sorted(set(faults))},
        "checks": [c.summary() for c in checks],
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    if cfg.tls:
        results["tls_rejected"] = rejections(m.log_path for m in cluster.members)
    if cluster.auth is not None:
        results["auth_setup"] = cluster.auth.summary()
        results["auth_tokens"] = {
            "clients": tokens, "root": cluster.tokens.counts() if cluster.tokens else {}}
        results["auth_errors"] = auth_errors(op.error for op in client)
    (cfg.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(cfg.out, history, checks, results)
    return Outcome(code, results, checks)
