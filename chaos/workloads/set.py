"""``set``: unique adds; every acknowledged add is in the final read, nothing else is.

An add of element ``e`` puts key ``chaos/set/<e>`` (elements are unique across the run).
After healing, every member is read with one linearizable Range over the prefix (keys
only); :func:`chaos.checkers.set.check_set` compares the last read with the adds and checks
that all final reads agree.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence

from chaos.checkers.set import check_set
from chaos.client import Client
from chaos.history import History, Value
from chaos.workloads import Check, Workload, client_ops, count_outcomes, retry_final
from raftkv.wire.pb.etcdserverpb import rpc_pb2

__all__ = ["SetWorkload"]

PREFIX = b"chaos/set/"


class SetWorkload(Workload):
    """See the module docstring."""

    name = "set"

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._next = itertools.count(1)

    async def step(self, client: Client) -> None:
        e = next(self._next)

        async def call() -> Value:
            await client.kv.Put(rpc_pb2.PutRequest(key=PREFIX + str(e).encode(), value=b"1"),
                                timeout=client.timeout_s)
            return e
        await client.op("add", None, e, call)

    async def _read(self, client: Client) -> Value:
        resp = await client.kv.Range(
            rpc_pb2.RangeRequest(key=PREFIX, range_end=PREFIX[:-1] + b"0", keys_only=True),
            timeout=max(client.timeout_s, 10.0))
        return tuple(sorted(int(kv.key[len(PREFIX):]) for kv in resp.kvs))

    async def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            await retry_final(client, "read", functools.partial(self._read, client))

    def check(self, history: History) -> list[Check]:
        ops = client_ops(history)
        result = check_set(ops)
        counts = count_outcomes(ops)
        counts.update(acknowledged=result.ok, indeterminate=result.indeterminate,
                      recovered=result.recovered, lost=len(result.lost),
                      unexpected=len(result.unexpected), divergent=len(result.divergent))
        return [Check("set", result.valid, counts, result.render())]
