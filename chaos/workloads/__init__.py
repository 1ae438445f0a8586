"""Workloads: what the clients do, what they read at the end, and how it is judged.

A workload issues one random operation per :meth:`Workload.step` through a
:class:`chaos.client.Client` (which records it), reads the final state in
:meth:`Workload.final` after the cluster has healed, and turns the history into
:class:`Check` verdicts. Client operations have integer processes; the nemesis's events
(string processes) are filtered out before checking.
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from chaos.client import Client
from chaos.history import EventType, History, Operation, Value

__all__ = ["Check", "Workload", "client_ops", "key_prefix", "retry_final"]


@dataclass
class Check:
    """One checker's verdict, as written to ``results.json``.

    Attributes:
        name: the checker.
        valid: True (passed), False (violation) or None (could not decide).
        counts: what was checked, for the report.
        text: the human-readable verdict (and failing window, if any).
        finding: informational only: never changes the run's exit status (e.g. the
            lock workload's unfenced writes, which are expected to overlap).
        window: indexes of the operations of the failing window, for the timeline plot.
    """

    name: str
    valid: bool | None
    counts: dict[str, int]
    text: str
    finding: bool = False
    window: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {"checker": self.name, "valid": self.valid, "finding": self.finding,
                **self.counts}


def client_ops(history: History) -> list[Operation]:
    """The clients' operations (integer processes), without the nemesis's."""
    return [op for op in history if isinstance(op.process, int)]


def count_outcomes(ops: Sequence[Operation]) -> dict[str, int]:
    counts = {"ops": len(ops), "ok": 0, "fail": 0, "info": 0}
    for op in ops:
        counts[op.status.value] += 1
    return counts


async def retry_final(client: Client, f: str, call: Callable[[], Awaitable[Value]],
                      *, attempts: int = 20) -> Value:
    """Run a final read until it is ``ok``; None if it never was."""
    for _ in range(attempts):
        status, value = await client.op(f, None, None, call, read_only=True)
        if status is EventType.OK:
            return value
        await asyncio.sleep(0.5)
    return None


class Workload(abc.ABC):
    """See the module docstring."""

    name: str = "workload"
    prefix: bytes = b""
    """Every key the workload reads or writes starts with this (``--auth`` grants the
    workload's user READWRITE on exactly this prefix)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def setup(self, client: Client) -> None:
        """Write the initial state (before the clients and nemesis start)."""
        del client

    @abc.abstractmethod
    async def step(self, client: Client) -> None:
        """Issue one operation (or one short sequence, e.g. a lock hold)."""

    async def final(self, clients: Sequence[Client]) -> None:
        """Read the final state after healing (recorded in the history)."""
        del clients

    async def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Stop background work (called before the clients close, whatever happened)."""

    @abc.abstractmethod
    def check(self, history: History) -> list[Check]:
        """Judge the history."""


def make(name: str, rng: random.Random, *, keys: int) -> Workload:
    """The workload called ``name``.

    Raises:
        ValueError: unknown name.
    """
    from chaos.workloads.bank import BankWorkload
    from chaos.workloads.lock import LockWorkload
    from chaos.workloads.register import RegisterWorkload
    from chaos.workloads.set import SetWorkload

    if name == "register":
        return RegisterWorkload(rng, keys=keys)
    if name == "bank":
        return BankWorkload(rng)
    if name == "lock":
        return LockWorkload(rng)
    if name == "set":
        return SetWorkload(rng)
    raise ValueError(f"unknown workload {name!r}")


def key_prefix(name: str) -> bytes:
    """The key prefix of workload ``name`` (see :attr:`Workload.prefix`).

    Raises:
        ValueError: unknown name.
    """
    return make(name, random.Random(0), keys=1).prefix


WORKLOADS = ("register", "bank", "lock", "set")
