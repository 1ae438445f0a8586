"""What the client subcommands share: global flags, a connected client, and output.

Every client subcommand (``get``, ``put``, ``member list``, ...) takes etcdctl's global flags
(``--endpoints``, ``-w/--write-out``, ``--dial-timeout``, ``--command-timeout``, TLS files),
before or after its own arguments. ``--endpoints`` defaults to ``$RAFTKV_ENDPOINTS``, then
``$ETCDCTL_ENDPOINTS``, then ``127.0.0.1:2379``; the TLS flags likewise default to
``$RAFTKV_CACERT`` / ``$ETCDCTL_CACERT`` (``CERT``, ``KEY``, ``INSECURE_SKIP_TLS_VERIFY``,
``INSECURE_TRANSPORT``). TLS is on with an ``https://`` endpoint, any TLS file,
``--insecure-skip-tls-verify`` or ``--insecure-transport=false``.

Authentication is etcdctl's: ``--user NAME[:PASSWORD]`` (``$RAFTKV_USER``, ``$ETCDCTL_USER``)
and ``--password`` (``$RAFTKV_PASSWORD``, ``$ETCDCTL_PASSWORD``); without a password the
command asks for it (on the terminal without echo, else one line of stdin). The client
authenticates once per command and every client the command makes shares that token.

Output follows etcdctl: ``simple`` (human lines), ``json`` (etcd's JSON shape: header with
cluster_id / member_id / revision / raft_term, keys and values in base64) and ``table``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from raftkv.cli._common import FMT, CliError, Parser
from raftkv.errors import ConfigError

if TYPE_CHECKING:
    from raftkv.client import TLS

DEFAULT_ENDPOINTS = "127.0.0.1:2379"
FORMATS = ("simple", "json", "table")
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"


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


def boolean(text: str) -> bool:
    """etcdctl's boolean flag values: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    t = text.strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


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
                   help="verify servers with this CA bundle (turns TLS on; default: "
                        "$RAFTKV_CACERT or $ETCDCTL_CACERT)")
    g.add_argument("--cert", metavar="FILE", dest="tls_cert", default=argparse.SUPPRESS,
                   help="client certificate for mutual TLS ($RAFTKV_CERT, $ETCDCTL_CERT)")
    g.add_argument("--key", metavar="FILE", dest="tls_key", default=argparse.SUPPRESS,
                   help="private key of --cert ($RAFTKV_KEY, $ETCDCTL_KEY)")
    g.add_argument("--insecure-skip-tls-verify", action="store_true",
                   dest="tls_skip_verify", default=argparse.SUPPRESS,
                   help="TLS on, but do not verify the server's certificate (anyone on the "
                        "path can impersonate the server; for tests only)")
    g.add_argument("--insecure-transport", type=boolean, metavar="true|false",
                   dest="tls_insecure_transport", default=argparse.SUPPRESS,
                   help="etcdctl's flag: false turns TLS on with the system roots when no "
                        "TLS file is given (default: true)")
    g.add_argument("--user", metavar="NAME[:PASSWORD]", dest="auth_user",
                   default=argparse.SUPPRESS,
                   help="authenticate as NAME (the password is asked for when not given; "
                        "default: $RAFTKV_USER or $ETCDCTL_USER)")
    g.add_argument("--password", metavar="PASSWORD", dest="auth_password",
                   default=argparse.SUPPRESS,
                   help="password of --user, which then must not include one "
                        "($RAFTKV_PASSWORD, $ETCDCTL_PASSWORD)")
    return p


def add_command(sub: Any, name: str, *, help: str, description: str,
                example: str, func: Callable[[argparse.Namespace], int]) -> Parser:
    """Add a client subcommand that takes the global flags and has an example."""
    p: Parser = sub.add_parser(name, help=help, description=description,
                               formatter_class=FMT, parents=[global_flags()],
                               epilog="example:\n" + example.rstrip("\n") + "\n")
    p.set_defaults(func=func)
    return p


class SharedAuth:
    """The token the first client of a command obtained, for the others it makes."""

    def __init__(self) -> None:
        self.token: str | None = None

    def __repr__(self) -> str:
        return "SharedAuth()"  # never the token


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
    insecure_skip_tls_verify: bool = False
    insecure_transport: bool = True
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    shared: SharedAuth = field(default_factory=SharedAuth, repr=False,
                               compare=False)

    @property
    def secure(self) -> bool:
        """Whether the connections use TLS."""
        return (any(e.lower().startswith("https://") for e in self.endpoints)
                or bool(self.cacert or self.cert or self.key)
                or self.insecure_skip_tls_verify or not self.insecure_transport)

    def tls(self) -> TLS | None:
        """The client's TLS settings, or None for plaintext."""
        from raftkv.client import TLS

        if not self.secure:
            return None
        if (self.cert is None) != (self.key is None):
            given, missing = ("--cert", "--key") if self.key is None else ("--key", "--cert")
            raise ConfigError(f"{given} needs {missing} too (a client certificate and its "
                              "private key)")
        return TLS(ca_file=self.cacert, cert_file=self.cert, key_file=self.key,
                   insecure_skip_verify=self.insecure_skip_tls_verify)


def _flag(ns: argparse.Namespace, dest: str, env: str) -> str | None:
    """A flag's value, else ``$RAFTKV_<env>``, else etcdctl's ``$ETCDCTL_<env>``."""
    value = getattr(ns, dest, None)
    if value is None:
        value = os.environ.get(f"RAFTKV_{env}") or os.environ.get(f"ETCDCTL_{env}")
    return None if value is None else str(value)


def _bool_flag(ns: argparse.Namespace, dest: str, env: str, default: bool) -> bool:
    value = getattr(ns, dest, None)
    if isinstance(value, bool):
        return value
    for var in (f"RAFTKV_{env}", f"ETCDCTL_{env}"):
        if os.environ.get(var):
            try:
                return boolean(os.environ[var])
            except argparse.ArgumentTypeError as exc:
                raise ConfigError(f"${var}: {exc}") from None
    return default


def options(ns: argparse.Namespace) -> Options:
    text = getattr(ns, "endpoints", None) or os.environ.get("RAFTKV_ENDPOINTS") or \
        os.environ.get("ETCDCTL_ENDPOINTS") or DEFAULT_ENDPOINTS
    endpoints = tuple(e.strip() for e in text.split(",") if e.strip())
    if not endpoints:
        raise ConfigError(f"--endpoints={text!r} names no endpoint; give host:port,...")
    user, password = credentials(ns)
    return Options(endpoints, getattr(ns, "write_out", "simple"),
                   getattr(ns, "dial_timeout", 2.0), getattr(ns, "command_timeout", 5.0),
                   _flag(ns, "tls_cacert", "CACERT"), _flag(ns, "tls_cert", "CERT"),
                   _flag(ns, "tls_key", "KEY"),
                   _bool_flag(ns, "tls_skip_verify", "INSECURE_SKIP_TLS_VERIFY", False),
                   _bool_flag(ns, "tls_insecure_transport", "INSECURE_TRANSPORT", True),
                   user, password)


def credentials(ns: argparse.Namespace) -> tuple[str | None, str | None]:
    """``(user, password)`` from ``--user`` / ``--password`` (or their variables), as
    etcdctl reads them: ``NAME:PASSWORD``, or ``NAME`` and the password asked for."""
    user = _flag(ns, "auth_user", "USER")
    password = _flag(ns, "auth_password", "PASSWORD")
    if not user:
        if password:
            raise ConfigError("--password needs --user NAME")
        return None, None
    if password:
        if ":" in user:
            raise ConfigError("--user must not include a password (NAME:PASSWORD) when "
                              "--password is given; use --user NAME")
        return user, password
    name, colon, given = user.partition(":")
    if not name:
        raise ConfigError("--user: the user name is empty; use --user NAME[:PASSWORD]")
    return name, given if colon else ask_password("Password: ")


def ask_password(prompt: str) -> str:
    """A password from the terminal without echo (``prompt`` on it), or, with no terminal,
    the first line of stdin (``prompt`` on stderr). Raises CliError at end of input."""
    try:
        with open("/dev/tty", "rb"):
            has_tty = True
    except OSError:
        has_tty = False
    if has_tty:
        try:
            return getpass.getpass(prompt)
        except EOFError:
            raise CliError("no password given (end of input)") from None
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    sys.stderr.write("\n")
    if not line:
        raise CliError("no password given: stdin is closed (give NAME:PASSWORD, or "
                       "--password)")
    return line.rstrip("\r\n")


def make_client(opts: Options, endpoints: Sequence[str] | None = None) -> Any:
    """A :class:`raftkv.client.Client` for ``endpoints`` (default: the flag's), with TLS
    when the options turn it on (also for ``host:port`` endpoints taken from a member
    list), and the credentials of ``--user`` (the token of the command's first client
    when it has one)."""
    from raftkv.client import Client

    return Client(list(endpoints or opts.endpoints), timeout=opts.command_timeout_s,
                  tls=opts.tls(), username=opts.user, password=opts.password,
                  token=opts.shared.token)


def run(ns: argparse.Namespace, body: Callable[[Any, Options], Awaitable[int]]) -> int:
    """Connect, run ``body(client, options)`` on a fresh event loop, close, return its code."""
    from raftkv.client import UserEmptyError

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
            opts.shared.token = client.auth_token
            return await body(client, opts)
        except asyncio.CancelledError:
            return 130
        except UserEmptyError as exc:
            if opts.user:
                raise
            raise CliError(f"{exc} (authentication is on: give --user NAME[:PASSWORD] or "
                           "$RAFTKV_USER)") from None
        finally:
            await client.close()

    return asyncio.run(main())


async def _reach(client: Any, opts: Options) -> None:
    """Find a member that answers within --dial-timeout (so a command that would wait, a
    watch or a lock, fails fast with a clear line when no endpoint is up)."""
    from raftkv.client import AuthFailedError
    from raftkv.errors import PermissionDeniedError, RaftKVError

    try:
        await asyncio.wait_for(client.status(), opts.dial_timeout_s)
    except AuthFailedError:
        raise  # wrong user or password: said as the server says it
    except PermissionDeniedError:
        return  # it answered; the command's own request reports what it may not do
    except (RaftKVError, TimeoutError) as exc:
        why = f" ({exc})" if str(exc) else ""
        hint = await asyncio.to_thread(tls_diagnosis, opts.endpoints[0], opts)
        raise CliError(f"no endpoint of --endpoints={','.join(opts.endpoints)} answered "
                       f"within --dial-timeout={opts.dial_timeout_s:g}s{why}"
                       + (f": {hint}" if hint else "")) from None


def tls_diagnosis(endpoint: str, opts: Options, timeout_s: float = 2.0) -> str | None:
    """Why TLS (or its absence) keeps ``endpoint`` from answering, in terms of the flags:
    one TLS handshake with the same settings (plus the HTTP/2 preface, so a TLS 1.3 server
    refusing the client certificate says so); None when that is not the reason."""
    address = endpoint.split("://", 1)[-1].rstrip("/")
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2"])
    try:
        if opts.secure and not opts.insecure_skip_tls_verify:
            if opts.cacert:
                ctx.load_verify_locations(opts.cacert)
            else:
                ctx.load_default_certs()
        else:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if opts.secure and opts.cert and opts.key:
            ctx.load_cert_chain(opts.cert, opts.key)
    except (OSError, ValueError) as exc:
        return f"cannot load the TLS files ({exc})"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock, \
                ctx.wrap_socket(sock, server_hostname=host) as conn:
            if not opts.secure:
                return (f"{address} speaks TLS: use https://{address} with --cacert (and "
                        "--cert/--key if it requires client certificates)")
            conn.sendall(_H2_PREFACE)
            if not conn.recv(1):  # closed at once: the client certificate was refused
                return _tls_refusal(address, opts, "closed right after the handshake")
    except ssl.SSLCertVerificationError as exc:
        return (f"the TLS certificate of {address} did not verify ({exc.verify_message}): "
                "give --cacert with the CA that signed it (or --insecure-skip-tls-verify)")
    except ssl.SSLError as exc:
        return _tls_refusal(address, opts, str(exc.reason or exc)) if opts.secure else None
    except (OSError, ValueError):
        return None
    return None


def _tls_refusal(address: str, opts: Options, reason: str) -> str:
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "PACKET" in reason:
        return (f"{address} does not speak TLS (a plaintext http:// endpoint?): drop "
                "https:// and the TLS flags")
    if not opts.cert and ("CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason
                          or "closed" in reason):
        return f"{address} requires a client certificate: give --cert and --key"
    if opts.cert and ("ALERT" in reason or "closed" in reason):
        return (f"{address} refused the client certificate {opts.cert} ({reason}; its log "
                "says why)")
    return f"the TLS handshake with {address} failed ({reason})"


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
