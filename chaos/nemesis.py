"""Nemeses: the faults, and a seeded schedule that mixes them.

Every fault is recorded in the history as two ``info`` operations of a string process
(``"nemesis"``): ``start-<kind>`` when it is injected and ``stop-<kind>`` when it is
undone, each with a description as its value, so the report can shade the window.

Kinds:

* ``partition`` — one of: ``halves`` (a random minority cut off from the majority),
  ``leader`` (the current leader isolated from everyone), ``ring`` (majority ring: each
  member sees a majority, no two the same), ``bridge`` (two halves that only one member
  sees both of). Peer traffic is dropped in both directions; clients still reach every
  member (which then cannot make progress without a quorum).
* ``kill`` — ``kill -9`` a minority of members (sometimes the leader), restart them later
  from their data directories.
* ``pause`` — SIGSTOP a member (often the leader) for longer than a lease TTL, then SIGCONT.
* ``member`` — remove a member through the Cluster API, wipe it, add it back with a new
  peer URL and start it empty as ``--initial-cluster-state existing``; half the time while
  a partition is in place among the others.
* ``loss`` — drop a percentage of peer packets at random (netns only).
* ``slow`` — delay every peer link (proxy only).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from chaos.cluster import ChaosCluster, ClusterError, Member
from chaos.history import EventType, Recorder, Value
from chaos.net import Link

__all__ = ["KINDS", "Nemesis", "partition_links"]

log = logging.getLogger("chaos.nemesis")
KINDS = ("partition", "kill", "pause", "member", "loss", "slow")
PARTITIONS = ("halves", "leader", "ring", "bridge")


def _cut(a: Sequence[int], b: Sequence[int]) -> set[Link]:
    return {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}


def partition_links(mode: str, n: int, rng: random.Random, leader: int | None) -> set[Link]:
    """The directed links to block for partition ``mode`` over members ``0..n-1``."""
    nodes = list(range(n))
    rng.shuffle(nodes)
    if mode == "leader":
        target = leader if leader is not None else nodes[0]
        return _cut([target], [i for i in range(n) if i != target])
    if mode == "ring":
        reach = (n // 2 + 1) // 2  # each sees itself and 2*reach >= n//2 others: a majority
        allowed = {(nodes[i], nodes[(i + d) % n]) for i in range(n)
                   for d in range(-reach, reach + 1)}
        return {(a, b) for a in range(n) for b in range(n) if a != b and (a, b) not in allowed
                and (b, a) not in allowed}
    if mode == "bridge" and n >= 3:
        mid = n // 2
        left, bridge, right = nodes[:mid], nodes[mid], nodes[mid + 1:]
        del bridge
        return _cut(left, right)
    half = n // 2
    return _cut(nodes[:half], nodes[half:])


class Nemesis:
    """Runs the seeded schedule against a cluster (see the module docstring)."""

    def __init__(self, cluster: ChaosCluster, recorder: Recorder, rng: random.Random,
                 kinds: Sequence[str], *, interval_s: tuple[float, float] = (2.0, 4.0),
                 duration_s: tuple[float, float] = (3.0, 7.0)) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.rng = rng
        self.kinds = list(kinds)
        self.interval_s = interval_s
        self.duration_s = duration_s
        self.faults: list[str] = []

    async def run(self) -> None:
        """Inject faults until cancelled; each one is undone before the next starts."""
        actions: dict[str, Callable[[float], Awaitable[None]]] = {
            "partition": self.partition, "kill": self.kill, "pause": self.pause,
            "member": self.member, "loss": self.loss, "slow": self.slow}
        while True:
            await asyncio.sleep(self.rng.uniform(*self.interval_s))
            kind = self.rng.choice(self.kinds)
            try:
                await actions[kind](self.rng.uniform(*self.duration_s))
            except ClusterError as exc:  # e.g. a member change that found no quorum
                self._event("nemesis", f"error-{kind}", str(exc))
                log.warning("nemesis %s: %s", kind, exc)

    def _event(self, process: str, f: str, value: Value) -> None:
        inv = self.recorder.invoke(process, f, None, value)
        self.recorder.complete(inv, EventType.INFO, value)

    def _start(self, kind: str, value: Value, process: str = "nemesis") -> None:
        self.faults.append(kind)
        self._event(process, f"start-{kind}", value)

    def _stop(self, kind: str, value: Value, process: str = "nemesis") -> None:
        self._event(process, f"stop-{kind}", value)

    async def _leader_index(self) -> int | None:
        leader = await self.cluster.leader()
        return None if leader is None else leader.index

    async def partition(self, duration_s: float, *, process: str = "nemesis",
                        among: Sequence[int] | None = None) -> None:
        mode = self.rng.choice(PARTITIONS)
        nodes = list(among) if among is not None else list(range(len(self.cluster.members)))
        leader = await self._leader_index()
        local = partition_links(mode, len(nodes),  self.rng,
                                nodes.index(leader) if leader in nodes else None)
        links = {(nodes[a], nodes[b]) for a, b in local}
        desc: Value = {"mode": mode,
                       "cut": tuple(sorted(f"n{a + 1}-n{b + 1}" for a, b in links if a < b))}
        self._start("partition", desc, process)
        try:
            await self.cluster.net.block(links)
            await asyncio.sleep(duration_s)
        finally:
            await self.cluster.net.block(set())
            self._stop("partition", desc, process)

    def _victims(self, most: int) -> list[Member]:
        live = [m for m in self.cluster.members if m.alive() and not m.removed]
        k = self.rng.randint(1, max(1, min(most, len(live))))
        return self.rng.sample(live, min(k, len(live)))

    async def kill(self, duration_s: float) -> None:
        minority = (len(self.cluster.members) - 1) // 2
        victims = self._victims(minority)
        leader = await self.cluster.leader()
        if leader is not None and self.rng.random() < 0.5 and leader.alive():
            victims = [leader, *[v for v in victims if v is not leader]][:max(1, minority)]
        names = sorted(m.name for m in victims)
        self._start("kill", {"members": tuple(names)})
        try:
            for m in victims:
                await self.cluster.kill(m)
            await asyncio.sleep(duration_s)
        finally:
            for m in victims:
                if not m.alive() and not m.removed:
                    self.cluster.restart(m)
            self._stop("kill", {"members": tuple(names)})

    async def pause(self, duration_s: float) -> None:
        leader = await self.cluster.leader()
        if leader is not None and self.rng.random() < 0.6:
            victim = leader
        else:
            victim = self._victims(1)[0]
        self._start("pause", {"members": (victim.name,)})
        try:
            self.cluster.pause(victim)
            await asyncio.sleep(max(duration_s, 3.5))
        finally:
            self.cluster.resume(victim)
            self._stop("pause", {"members": (victim.name,)})

    async def member(self, duration_s: float) -> None:
        victim = self._victims(1)[0]
        others = [m.index for m in self.cluster.members if m is not victim and not m.removed]
        self._start("member", {"remove": victim.name, "generation": victim.generation})
        try:
            await self.cluster.remove_member(victim)
            if "partition" in self.kinds and len(others) >= 3 and self.rng.random() < 0.5:
                await self.partition(duration_s / 2, process="nemesis-2", among=others)
            else:
                await asyncio.sleep(duration_s / 2)
            await self.cluster.add_member(victim)
        finally:
            self._stop("member", {"add": victim.name, "generation": victim.generation})

    async def loss(self, duration_s: float) -> None:
        percent = self.rng.choice((10, 20, 35))
        targets = [m.index for m in self.cluster.members]
        self._start("loss", {"percent": percent})
        try:
            await self.cluster.net.loss(percent, targets)
            await asyncio.sleep(duration_s)
        finally:
            await self.cluster.net.loss(0, targets)
            self._stop("loss", {"percent": percent})

    async def slow(self, duration_s: float) -> None:
        delay = self.rng.choice((0.05, 0.1, 0.2))
        self._start("slow", {"delay_s": delay})
        try:
            await self.cluster.net.slow(delay)
            await asyncio.sleep(duration_s)
        finally:
            await self.cluster.net.slow(0.0)
            self._stop("slow", {"delay_s": delay})
