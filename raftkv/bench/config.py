"""What one benchmark run does: :class:`BenchConfig`, validated with one-line errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

WORKLOADS = ("put", "get", "txn", "lock", "watch")
"""``get`` is linearizable unless ``serializable`` is set."""


class BenchConfigError(ValueError):
    """A bad setting; the message names the flag, the value and the fix (one line)."""


def parse_endpoints(text: str) -> tuple[str, ...]:
    """``host:port`` list from ``a:1,http://b:2`` (a scheme is accepted and dropped).

    Raises:
        BenchConfigError: an empty list or an endpoint without a port.
    """
    out = []
    for raw in text.split(","):
        ep = raw.strip()
        for scheme in ("http://", "https://"):
            if ep.startswith(scheme):
                ep = ep[len(scheme):]
        ep = ep.rstrip("/")
        if not ep:
            continue
        host, _, port = ep.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BenchConfigError(f"--endpoints {raw.strip()!r}: expected host:port, "
                                   f"e.g. 127.0.0.1:2379")
        out.append(ep)
    if not out:
        raise BenchConfigError(f"--endpoints {text!r}: give at least one host:port")
    return tuple(out)


def uses_https(text: str) -> bool:
    """Whether an endpoint of the list is an ``https://`` URL (which turns TLS on)."""
    return any(ep.strip().lower().startswith("https://") for ep in text.split(","))


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """One run: ``workload`` against ``endpoints`` for ``warmup_s + duration_s``.

    Attributes:
        concurrency: requests in flight in total, spread over ``procs`` processes (for
            ``watch``: writers in flight).
        conns: gRPC channels per endpoint in each process (workers share them).
        keys: size of the key space (keys ``prefix + %08d``).
        watchers: watch streams in total (``watch`` only).
        preload: write every key once before a ``get`` / ``txn`` run.
        tls: dial with TLS (on when any of the next four is set, or for https:// endpoints).
        cacert: CA bundle that verifies the servers (``None``: the system roots).
        cert, key: client certificate and its key, for servers that require one.
        insecure_skip_verify: TLS without verifying the servers' certificates.
    """

    endpoints: tuple[str, ...]
    workload: str = "put"
    serializable: bool = False
    concurrency: int = 64
    procs: int = 2
    conns: int = 1
    keys: int = 10_000
    value_size: int = 256
    duration_s: float = 10.0
    warmup_s: float = 1.0
    watchers: int = 16
    prefix: bytes = b"bench/"
    timeout_s: float = 10.0
    preload: bool = True
    tls: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure_skip_verify: bool = False
    user: str | None = None
    """``name:password``: authenticate once per client process and send its token."""

    @property
    def secure(self) -> bool:
        return (self.tls or self.insecure_skip_verify
                or any(f is not None for f in (self.cacert, self.cert, self.key)))

    @property
    def name(self) -> str:
        """The workload as a report names it (``get-serializable`` …)."""
        return "get-serializable" if self.workload == "get" and self.serializable \
            else self.workload

    def with_(self, **changes: object) -> BenchConfig:
        return replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> BenchConfig:
        """Check every setting; returns ``self``. Changes nothing.

        Raises:
            BenchConfigError: the first bad setting, with the fix.
        """
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise BenchConfigError(msg)

        need(self.workload in WORKLOADS,
             f"workload {self.workload!r}: choose one of {', '.join(WORKLOADS)}")
        need(self.concurrency >= 1, f"--concurrency {self.concurrency}: must be at least 1")
        need(1 <= self.procs <= 64, f"--procs {self.procs}: must be between 1 and 64")
        need(self.procs <= self.concurrency,
             f"--procs {self.procs}: more processes than --concurrency {self.concurrency}; "
             f"lower --procs")
        need(1 <= self.conns <= 64, f"--conns {self.conns}: must be between 1 and 64")
        need(self.keys >= 1, f"--keys {self.keys}: must be at least 1")
        need(0 <= self.value_size <= 1 << 20,
             f"--value-size {self.value_size}: must be between 0 and 1048576")
        need(self.duration_s > 0, f"--duration {self.duration_s:g}: must be above 0")
        need(self.warmup_s >= 0, f"--warmup {self.warmup_s:g}: must not be negative")
        need(self.timeout_s > 0, f"--timeout {self.timeout_s:g}: must be above 0")
        need(self.watchers >= 1, f"--watchers {self.watchers}: must be at least 1")
        need(not self.serializable or self.workload == "get",
             "--serializable applies to the get workload only")
        need(self.workload != "watch" or self.value_size >= 8,
             f"--value-size {self.value_size}: the watch workload needs at least 8 bytes "
             f"(the send time travels in the value)")
        need((self.cert is None) == (self.key is None),
             "--cert and --key go together: give the client certificate and its key")
        for flag, path in (("--cacert", self.cacert), ("--cert", self.cert),
                           ("--key", self.key)):
            need(path is None or os.access(path, os.R_OK),
                 f"{flag} {path}: no readable file there")
        return self

    def share(self, total: int, proc: int) -> int:
        """Process ``proc``'s part of ``total`` (the first ones take the remainder)."""
        base, extra = divmod(total, self.procs)
        return base + (1 if proc < extra else 0)
