"""What the client subcommands share: global flags, a connected client, and output.

Every client subcommand (``get``, ``put``, ``member list``, ...) takes etcdctl's global flags
(``--endpoints``, ``-w/--write-out``, ``--dial-timeout``, ``--command-timeout``, TLS files),
before or after its own arguments. ``--endpoints`` defaults to ``$RAFTKV_ENDPOINTS``, then
``$ETCDCTL_ENDPOINTS``, then ``127.0.0.1:2379``.

Output follows etcdctl: ``simple`` (human lines), ``json`` (etcd's JSON shape: header with
cluster_id / member_id / revision / raft_term, keys and values in base64) and ``table``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from raftkv.cli._common import FMT, CliError, Parser
from raftkv.errors import ConfigError

DEFAULT_ENDPOINTS = "127.0.0.1:2379"
FORMATS = ("simple", "json", "table")


def duration(text: str) -> float:
    """etcdctl durations: ``5s``, ``500ms``, ``1m`` or plain seconds."""
    t = text.strip()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, scale in units:
        if t.endswith(suffix) and t[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(t[: -len(suffix)]) * scale
    if t.replace(".", "", 1).isdigit():
        return float(t)
    raise argparse.ArgumentTypeError(f"must be a duration like 5s or 500ms, got {text!r}")


def global_flags() -> argparse.ArgumentParser:
    """A parent parser with the flags every client subcommand takes."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global flags")
    g.add_argument("--endpoints", metavar="HOST:PORT,...", default=argparse.SUPPRESS,
                   help="members to talk to (default: $RAFTKV_ENDPOINTS, "
                        f"$ETCDCTL_ENDPOINTS or {DEFAULT_ENDPOINTS})")
    g.add_argument("-w", "--write-out", choices=FORMATS, default=argparse.SUPPRESS,
                   help="output format (default: simple)")
    g.add_argument("--dial-timeout", type=duration, default=argparse.SUPPRESS,
                   metavar="DURATION", help="time to find a working member (default: 2s)")
    g.add_argument("--command-timeout", type=duration, default=argparse.SUPPRESS,
                   metavar="DURATION", help="deadline of each request (default: 5s)")
    g.add_argument("--cacert", metavar="FILE", dest="tls_cacert", default=argparse.SUPPRESS,
                   help="verify servers with this CA bundle (turns TLS on)")
    g.add_argument("--cert", metavar="FILE", dest="tls_cert", default=argparse.SUPPRESS,
                   help="client certificate for mutual TLS")
    g.add_argument("--key", metavar="FILE", dest="tls_key", default=argparse.SUPPRESS,
                   help="private key of --cert")
    return p


def add_command(sub: Any, name: str, *, help: str, description: str,
                example: str, func: Callable[[argparse.Namespace], int]) -> Parser:
    """Add a client subcommand that takes the global flags and has an example."""
    p: Parser = sub.add_parser(name, help=help, description=description,
                               formatter_class=FMT, parents=[global_flags()],
                               epilog="example:\n" + example.rstrip("\n") + "\n")
    p.set_defaults(func=func)
    return p


@dataclass(frozen=True, slots=True)
class Options:
    """The global flags, resolved."""

    endpoints: tuple[str, ...]
    write_out: str
    dial_timeout_s: float
    command_timeout_s: float
    cacert: str | None
    cert: str | None
    key: str | None


def options(ns: argparse.Namespace) -> Options:
    text = getattr(ns, "endpoints", None) or os.environ.get("RAFTKV_ENDPOINTS") or \
        os.environ.get("ETCDCTL_ENDPOINTS") or DEFAULT_ENDPOINTS
    endpoints = tuple(e.strip() for e in text.split(",") if e.strip())
    if not endpoints:
        raise ConfigError(f"--endpoints={text!r} names no endpoint; give host:port,...")
    return Options(endpoints, getattr(ns, "write_out", "simple"),
                   getattr(ns, "dial_timeout", 2.0), getattr(ns, "command_timeout", 5.0),
                   getattr(ns, "tls_cacert", None), getattr(ns, "tls_cert", None),
                   getattr(ns, "tls_key", None))


def make_client(opts: Options, endpoints: Sequence[str] | None = None) -> Any:
    """A :class:`raftkv.client.Client` for ``endpoints`` (default: the flag's)."""
    from raftkv.client import TLS, Client

    tls = None
    if opts.cacert or opts.cert or opts.key:
        tls = TLS(ca_file=opts.cacert, cert_file=opts.cert, key_file=opts.key)
    return Client(list(endpoints or opts.endpoints), timeout=opts.command_timeout_s, tls=tls)


def run(ns: argparse.Namespace, body: Callable[[Any, Options], Awaitable[int]]) -> int:
    """Connect, run ``body(client, options)`` on a fresh event loop, close, return its code."""
    opts = options(ns)

    async def main() -> int:
        # Ctrl-C / SIGTERM cancel the command cleanly: a held lock or an election is given
        # up (not left to expire), a watch is cancelled on the server
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        client = make_client(opts)
        try:
            await _reach(client, opts)
            return await body(client, opts)
        except asyncio.CancelledError:
            return 130
        finally:
            await client.close()

    return asyncio.run(main())


async def _reach(client: Any, opts: Options) -> None:
    """Find a member that answers within --dial-timeout (so a command that would wait, a
    watch or a lock, fails fast with a clear line when no endpoint is up)."""
    from raftkv.errors import RaftKVError

    try:
        await asyncio.wait_for(client.status(), opts.dial_timeout_s)
    except (RaftKVError, TimeoutError) as exc:
        why = f" ({exc})" if str(exc) else ""
        raise CliError(f"no endpoint of --endpoints={','.join(opts.endpoints)} answered "
                       f"within --dial-timeout={opts.dial_timeout_s:g}s{why}") from None


# -- output ---------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def header_json(h: Any) -> dict[str, int]:
    return {"cluster_id": h.cluster_id, "member_id": h.member_id, "revision": h.revision,
            "raft_term": h.raft_term}


def kv_json(kv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"key": b64(kv.key), "create_revision": kv.create_revision,
                           "mod_revision": kv.mod_revision, "version": kv.version,
                           "value": b64(kv.value)}
    if kv.lease:
        out["lease"] = kv.lease
    return out


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")


def text(data: bytes) -> str:
    """Bytes for a terminal: UTF-8 where possible, escapes where not."""
    return data.decode("utf-8", errors="backslashreplace")


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A table on stdout (rich; plain ASCII borders when stdout is not a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a pipe or a file: never wrap cells
        console = Console(width=1000)
    t = Table(box=box.ROUNDED if console.is_terminal else box.ASCII)
    for c in columns:
        t.add_column(c, no_wrap=not console.is_terminal)
    for r in rows:
        t.add_row(*(str(x) for x in r))
    console.print(t)
