"""The figures of a run (:class:`BenchResult`) and their table / JSON forms."""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from raftkv.bench.config import BenchConfig
from raftkv.bench.worker import ProcResult

CLIENT_BOUND_CPU = 0.85
"""A client process busier than this share of a core is probably the bottleneck."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One run's figures. Latencies in milliseconds; ``client_cpu`` in cores (summed over
    the client processes), ``client_cpu_max`` the busiest process's share of one core."""

    workload: str
    endpoints: list[str]
    concurrency: int
    procs: int
    keys: int
    value_size: int
    duration_s: float
    ops: int
    ops_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]
    client_cpu: float
    client_cpu_max: float
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def client_bound(self) -> bool:
        return self.client_cpu_max >= CLIENT_BOUND_CPU

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["error_count"] = self.error_count
        d["client_bound"] = self.client_bound
        return d


def percentile(sorted_xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN if empty)."""
    if not sorted_xs:
        return float("nan")
    rank = max(0, min(len(sorted_xs) - 1, math.ceil(p / 100 * len(sorted_xs)) - 1))
    return sorted_xs[rank]


def merge(cfg: BenchConfig, parts: Sequence[ProcResult]) -> BenchResult:
    """One result from every client process's measurements."""
    lat = array("d")
    errors: dict[str, int] = {}
    counters: dict[str, int] = {}
    for p in parts:
        lat.frombytes(p.latencies)
        for k, v in p.errors.items():
            errors[k] = errors.get(k, 0) + v
        for k, v in p.counters.items():
            counters[k] = counters.get(k, 0) + v
    xs = sorted(lat)
    window = max((p.window_s for p in parts), default=cfg.duration_s) or cfg.duration_s
    ms = 1000.0
    return BenchResult(
        workload=cfg.name, endpoints=list(cfg.endpoints), concurrency=cfg.concurrency,
        procs=cfg.procs, keys=cfg.keys, value_size=cfg.value_size, duration_s=window,
        ops=len(xs), ops_per_s=len(xs) / window,
        p50_ms=percentile(xs, 50) * ms, p90_ms=percentile(xs, 90) * ms,
        p99_ms=percentile(xs, 99) * ms, max_ms=(xs[-1] if xs else float("nan")) * ms,
        mean_ms=(sum(xs) / len(xs) if xs else float("nan")) * ms,
        errors=errors, client_cpu=sum(p.cpu_s for p in parts) / window,
        client_cpu_max=max((p.cpu_s for p in parts), default=0.0) / window,
        counters=counters)


def to_json(results: Sequence[BenchResult]) -> str:
    """The results as a JSON list (a figure with no samples is ``null``)."""
    def clean(d: dict[str, object]) -> dict[str, object]:
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}
    return json.dumps([clean(r.to_json()) for r in results], indent=2)


def table(results: Sequence[BenchResult]) -> str:
    """A plain-text table (rich renders it when stdout is a terminal)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="raftkv bench", title_justify="left")
    for col in ("workload", "in flight", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                "errors", "client CPU"):
        t.add_column(col, justify="left" if col == "workload" else "right")
    notes = []
    for r in results:
        cpu = f"{r.client_cpu:.2f} cores"
        if r.client_bound:
            cpu += " (client-bound)"
            notes.append(f"{r.workload}: a client process used {r.client_cpu_max:.0%} of a "
                         f"core: add --procs to measure the server, not the client")
        t.add_row(r.workload, str(r.concurrency), f"{r.ops_per_s:,.0f}", f"{r.p50_ms:.1f}",
                  f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.max_ms:.1f}",
                  _errors(r), cpu)
        if r.counters:
            notes.append(f"{r.workload}: " + ", ".join(f"{k} {v}"
                                                       for k, v in sorted(r.counters.items())))
    console = Console(width=120, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(t)
        for n in notes:
            console.print(n)
    return cap.get()


def _errors(r: BenchResult) -> str:
    if not r.errors:
        return "0"
    return f"{r.error_count} (" + ", ".join(f"{k} {v}" for k, v in
                                            sorted(r.errors.items())) + ")"
