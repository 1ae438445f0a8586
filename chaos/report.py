"""The run's report: ``report.html`` with PNG plots (matplotlib, Agg backend).

* ``latency.png`` — every operation's latency against the time it was invoked, ``ok`` as
  dots per function, ``fail`` grey, ``info`` (unknown outcome) as red crosses at the
  moment the client gave up; fault windows shaded;
* ``throughput.png`` — completions per second by outcome, fault windows shaded;
* ``window-<checker>.png`` — when a checker failed: the operations of its failing window
  as bars per process from invocation to completion (``info`` bars run to the window's
  end), labelled with what they did.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from chaos.history import EventType, History, Operation
from chaos.workloads import Check

__all__ = ["fault_windows", "write_report"]

COLORS = {"partition": "#f4a261", "kill": "#e76f51", "pause": "#8ab17d", "member": "#9b5de5",
          "loss": "#2a9d8f", "slow": "#e9c46a"}


def fault_windows(history: History, t0: int) -> list[tuple[str, float, float, str]]:
    """``(kind, start s, end s, description)`` for every recorded fault, relative to t0."""
    open_: dict[tuple[object, str], tuple[float, str]] = {}
    out: list[tuple[str, float, float, str]] = []
    end = max((e.time for e in history.events), default=t0)
    for op in history:
        if not isinstance(op.process, str) or op.status is not EventType.INFO:
            continue
        kind = op.f.split("-", 1)[-1]
        at = (op.call - t0) / 1e9
        if op.f.startswith("start-"):
            open_[(op.process, kind)] = (at, json.dumps(op.input, default=str))
        elif op.f.startswith("stop-") and (op.process, kind) in open_:
            start, desc = open_.pop((op.process, kind))
            out.append((kind, start, at, desc))
    out += [(k, s, (end - t0) / 1e9, d) for (_, k), (s, d) in open_.items()]
    return sorted(out, key=lambda w: w[1])


def _shade(ax: Axes, windows: Sequence[tuple[str, float, float, str]]) -> None:
    seen: set[str] = set()
    for kind, start, end, _ in windows:
        ax.axvspan(start, end, color=COLORS.get(kind, "#cccccc"), alpha=0.25,
                   label=None if kind in seen else kind, lw=0)
        seen.add(kind)


def _latency_plot(history: History, ops: Sequence[Operation],
                  windows: list[tuple[str, float, float, str]], t0: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.2))
    _shade(ax, windows)
    for f in sorted({op.f for op in ops}):
        pts = [((op.call - t0) / 1e9, (op.ret - op.call) / 1e6) for op in ops
               if op.f == f and op.status is EventType.OK]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, label=f"{f} ok")
    fails = [((op.call - t0) / 1e9, (op.ret - op.call) / 1e6) for op in ops
             if op.status is EventType.FAIL and math.isfinite(op.ret)]
    if fails:
        ax.scatter([p[0] for p in fails], [p[1] for p in fails], s=4, c="grey", label="fail")
    infos = [((op.call - t0) / 1e9, (history.events[op.complete_index].time - op.call) / 1e6)
             for op in ops if op.indeterminate and op.complete_index >= 0]
    if infos:
        ax.scatter([p[0] for p in infos], [p[1] for p in infos], s=12, c="red", marker="x",
                   label="info")
    ax.set_yscale("log")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("operation latency (fault windows shaded)")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _throughput_plot(ops: Sequence[Operation], windows: list[tuple[str, float, float, str]],
                     t0: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 3.6))
    _shade(ax, windows)
    end = max((op.call for op in ops), default=t0)
    buckets = int((end - t0) / 1e9) + 1
    for status, color in ((EventType.OK, "tab:blue"), (EventType.FAIL, "grey"),
                          (EventType.INFO, "red")):
        counts = [0] * buckets
        for op in ops:
            if op.status is status:
                counts[min(buckets - 1, int((op.call - t0) / 1e9))] += 1
        ax.plot(range(buckets), counts, color=color, label=status.value, lw=1.2)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("ops / s")
    ax.set_title("throughput by outcome (fault windows shaded)")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _window_plot(ops: Sequence[Operation], title: str, path: Path) -> None:
    t0 = min(op.call for op in ops)
    finite = [op.ret for op in ops if math.isfinite(op.ret)]
    end = max([*finite, *(op.call for op in ops)]) + 1e8
    procs = sorted({str(op.process) for op in ops})
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(ops) + 1.5))
    for row, op in enumerate(ops):
        ret = op.ret if math.isfinite(op.ret) else end
        color = {EventType.OK: "tab:blue", EventType.FAIL: "grey"}.get(op.status, "red")
        ax.barh(row, (ret - op.call) / 1e6, left=(op.call - t0) / 1e6, color=color, alpha=0.6)
        ax.text((op.call - t0) / 1e6, row, f" #{op.index} {op.describe()}"[:90], va="center",
                fontsize=7)
    ax.set_yticks(range(len(ops)), [f"p{op.process}" for op in ops], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the window's first invocation")
    ax.set_title(f"{title} ({len(procs)} processes)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(out: Path, history: History, checks: Sequence[Check],
                 results: Mapping[str, object]) -> Path:
    """Write the plots and ``report.html`` into ``out``; return the HTML's path."""
    ops = [op for op in history if isinstance(op.process, int)]
    t0 = min((e.time for e in history.events), default=0)
    windows = fault_windows(history, t0)
    images = []
    if ops:
        _latency_plot(history, ops, windows, t0, out / "latency.png")
        _throughput_plot(ops, windows, t0, out / "throughput.png")
        images += ["latency.png", "throughput.png"]
    by_index = {op.index: op for op in history}
    for check in checks:
        chosen = [by_index[i] for i in check.window if i in by_index]
        if check.valid is False and chosen:
            name = f"window-{check.name}.png"
            _window_plot(sorted(chosen, key=lambda o: o.call), f"{check.name}: failing window",
                         out / name)
            images.append(name)
    path = out / "report.html"
    path.write_text(_html(checks, results, windows, images))
    return path


def _html(checks: Sequence[Check], results: Mapping[str, object],
          windows: Sequence[tuple[str, float, float, str]], images: Sequence[str]) -> str:
    e = html.escape
    verdict = "PASS" if results.get("valid") else "FAIL"
    rows = "".join(
        f"<tr><td>{e(c.name)}</td><td class={'ok' if c.valid else 'bad'}>"
        f"{'finding' if c.finding else c.valid}</td><td>{e(json.dumps(c.counts))}</td></tr>"
        for c in checks)
    faults = "".join(f"<tr><td>{e(k)}</td><td>{s:.1f}</td><td>{t:.1f}</td><td>{e(d)}</td></tr>"
                     for k, s, t, d in windows)
    texts = "".join(f"<h3>{e(c.name)}</h3><pre>{e(c.text)}</pre>" for c in checks)
    imgs = "".join(f'<p><img src="{e(i)}" alt="{e(i)}"></p>' for i in images)
    summary = {k: v for k, v in results.items() if k not in ("checks", "config")}
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>raftkv chaos: {e(str(results.get('workload')))} {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}
td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}
.ok{{color:green}} .bad{{color:#b00}} pre{{background:#f6f6f6;padding:8px;overflow-x:auto}}</style>
</head><body>
<h1>raftkv chaos run: {e(str(results.get('workload')))} — {verdict}</h1>
<pre>{e(json.dumps(summary, indent=1))}</pre>
<h2>Checks</h2><table><tr><th>checker</th><th>valid</th><th>counts</th></tr>{rows}</table>
<h2>Plots</h2>{imgs}
<h2>Fault windows</h2><table><tr><th>fault</th><th>start s</th><th>end s</th><th>what</th></tr>
{faults}</table>
<h2>Verdicts</h2>{texts}
<p>History: <a href="history.jsonl">history.jsonl</a> (JSON lines; chaos.history.to_edn converts
it to Jepsen EDN). Results: <a href="results.json">results.json</a>.</p>
</body></html>
"""
