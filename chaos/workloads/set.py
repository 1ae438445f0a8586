"""``set``: unique adds; every acknowledged add is in the final read, nothing else is.

An add of element ``e`` puts key ``chaos/set/<e>`` (elements are unique across the run),
through raw stubs or, with ``--client raftkv``, through :class:`raftkv.client.Client`,
whose retries carry a request id the server de-duplicates. After healing, every member is
read with one linearizable Range over the prefix (keys only, which still carries each
key's ``version``); :func:`chaos.checkers.set.check_set` compares the last read with the
adds, checks that all final reads agree, and that no key has a version above 1 (a retried
Put applied twice).

With ``--client raftkv`` one :class:`raftkv.client.Watch` on the prefix is opened before
the clients start, from the revision after a read of the (empty) prefix, on the admin
client bound to the leader at that time (the member the nemeses hit most; the library
fails over from it). It runs through every
fault; after the final reads it is given time to deliver everything up to the highest
``mod_revision`` they saw, and :func:`chaos.checkers.watch.check_watch` judges it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
from collections.abc import Sequence

from chaos.checkers.set import check_set
from chaos.checkers.watch import WatchEvent, check_watch
from chaos.client import Client
from chaos.history import EventType, History, Operation, Value
from chaos.workloads import Check, Workload, client_ops, count_outcomes, retry_final
from raftkv.client import EventType as WatchEventType
from raftkv.client import Watch
from raftkv.errors import RaftKVError
from raftkv.wire.pb.etcdserverpb import rpc_pb2

__all__ = ["SetWorkload"]

PREFIX = b"chaos/set/"
CATCH_UP_S = 60.0
"""How long the watch may take, after the final reads, to deliver up to their revision."""


def _element(key: bytes) -> Value:
    rest = key[len(PREFIX):]
    return int(rest) if key.startswith(PREFIX) and rest.isdigit() else key.decode(
        errors="replace")


class SetWorkload(Workload):
    """See the module docstring."""

    name = "set"
    prefix = PREFIX

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._next = itertools.count(1)
        self._versions: dict[Value, int] = {}
        self._max_mod = 0
        self._watch: Watch | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._events: list[WatchEvent] = []
        self._watch_error: str | None = None
        self._caught_up = False
        self._watch_member = 0

    async def setup(self, client: Client) -> None:
        if client.rk is None or self._watch is not None:
            return
        start = (await client.rk.get_prefix(PREFIX, count_only=True, timeout=10.0)).revision
        self._watch = client.rk.watch(PREFIX, prefix=True, start_revision=start + 1)
        self._watch_member = client.member_index + 1
        await self._watch.start()
        self._watch_task = asyncio.create_task(self._follow(self._watch))

    async def _follow(self, watch: Watch) -> None:
        try:
            async for ev in watch:
                kind = "put" if ev.type is WatchEventType.PUT else "delete"
                self._events.append((kind, _element(ev.key), ev.revision))
        except RaftKVError as exc:  # compacted, or cancelled by the server
            self._watch_error = f"{type(exc).__name__}: {exc}"

    async def step(self, client: Client) -> None:
        e = next(self._next)
        key = PREFIX + str(e).encode()

        async def call() -> Value:
            if client.rk is not None:
                await client.rk.put(key, b"1", timeout=client.timeout_s)
            else:
                await client.kv.Put(rpc_pb2.PutRequest(key=key, value=b"1"),
                                    timeout=client.timeout_s)
            return e
        await client.op("add", None, e, call)

    async def _read(self, client: Client) -> Value:
        resp = await client.kv.Range(
            rpc_pb2.RangeRequest(key=PREFIX, range_end=PREFIX[:-1] + b"0", keys_only=True),
            timeout=max(client.timeout_s, 10.0))
        for kv in resp.kvs:
            e = _element(kv.key)
            self._versions[e] = max(self._versions.get(e, 0), kv.version)
            self._max_mod = max(self._max_mod, kv.mod_revision)
        return tuple(sorted(int(kv.key[len(PREFIX):]) for kv in resp.kvs))

    async def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            await retry_final(client, "read", functools.partial(self._read, client))
        if self._watch is None or self._watch_task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_S
        while self._watch.next_revision <= self._max_mod and not self._watch_task.done() \
                and loop.time() < deadline:
            await asyncio.sleep(0.1)
        self._caught_up = self._watch.next_revision > self._max_mod
        await self.close()

    async def close(self) -> None:
        if self._watch is not None:
            await self._watch.cancel()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task

    def check(self, history: History) -> list[Check]:
        ops = client_ops(history)
        result = check_set(ops, versions=self._versions)
        counts = count_outcomes(ops)
        counts.update(acknowledged=result.ok, indeterminate=result.indeterminate,
                      recovered=result.recovered, lost=len(result.lost),
                      unexpected=len(result.unexpected), divergent=len(result.divergent),
                      duplicated=len(result.duplicated))
        checks = [Check("set", result.valid, counts, result.render())]
        if self._watch is not None:
            checks.append(self._check_watch(ops))
        return checks

    def _check_watch(self, ops: Sequence[Operation]) -> Check:
        reads = [op for op in ops if op.f == "read" and op.status is EventType.OK
                 and isinstance(op.output, tuple)]
        final = reads[-1].output if reads else ()
        assert isinstance(final, tuple)
        possible = {op.input for op in ops if op.f == "add" and op.status is not EventType.FAIL}
        error = self._watch_error if reads else "no final read"
        assert self._watch is not None
        result = check_watch(self._events, final, possible, caught_up=self._caught_up,
                             error=error, reconnects=max(self._watch.reconnects, 0))
        return Check("watch", result.valid, {**result.counts(), "member": self._watch_member},
                     result.render() + f"\n  the watch started on member n{self._watch_member}")
