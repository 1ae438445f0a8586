"""``register``: read / write / compare-and-set on many keys; linearizability checker.

Each key ``chaos/reg/<k>`` is an independent register (P-compositionality lets the checker
split the history per key). Writes carry values unique across the run, which keeps the
search small; a cas expects the value this client last saw for the key. Reads are
linearizable Ranges (the default; ``serializable`` would legitimately be stale).

With ``--client raftkv`` the operations go through :class:`raftkv.client.Client` (``get``,
``put``, and a ``txn`` for the cas): its retries (de-duplicated writes, failover) must keep
the history linearizable. The final reads stay raw, one per member.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence

from chaos.checkers import Outcome, check_linearizable
from chaos.client import Client
from chaos.history import History, Value
from chaos.models import RegisterModel
from chaos.workloads import Check, Workload, client_ops, count_outcomes
from raftkv.client import Compare, Op
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.mvccpb import kv_pb2

__all__ = ["RegisterWorkload"]

PREFIX = b"chaos/reg/"


def _key(k: int) -> bytes:
    return PREFIX + str(k).encode()


def _decode(kvs: Sequence[kv_pb2.KeyValue]) -> Value:
    return int(kvs[0].value) if kvs else None


class RegisterWorkload(Workload):
    """See the module docstring."""

    name = "register"
    prefix = PREFIX

    def __init__(self, rng: random.Random, *, keys: int = 30) -> None:
        super().__init__(rng)
        self.keys = keys
        self._values = itertools.count(1)
        self._seen: dict[tuple[int, int], Value] = {}

    async def step(self, client: Client) -> None:
        k = self.rng.randrange(self.keys)
        roll = self.rng.random()
        if roll < 0.4:
            await self._read(client, k)
        elif roll < 0.7:
            await self._write(client, k)
        else:
            await self._cas(client, k)

    async def _read(self, client: Client, k: int) -> None:
        async def call() -> Value:
            if client.rk is not None:
                kv = await client.rk.get(_key(k), timeout=client.timeout_s)
                return None if kv is None else int(kv.value)
            resp = await client.kv.Range(rpc_pb2.RangeRequest(key=_key(k)),
                                         timeout=client.timeout_s)
            return _decode(resp.kvs)
        _, value = await client.op("read", k, None, call, read_only=True)
        self._seen[(client.number, k)] = value

    async def _write(self, client: Client, k: int) -> None:
        v = next(self._values)

        async def call() -> Value:
            if client.rk is not None:
                await client.rk.put(_key(k), str(v), timeout=client.timeout_s)
            else:
                await client.kv.Put(rpc_pb2.PutRequest(key=_key(k), value=str(v).encode()),
                                    timeout=client.timeout_s)
            return v
        await client.op("write", k, v, call)
        self._seen[(client.number, k)] = v

    async def _cas(self, client: Client, k: int) -> None:
        expected = self._seen.get((client.number, k))
        new = next(self._values)
        cmp = rpc_pb2.Compare(key=_key(k), target=rpc_pb2.Compare.VALUE,
                              result=rpc_pb2.Compare.EQUAL, value=str(expected).encode())
        if expected is None:  # absent: create_revision == 0
            cmp = rpc_pb2.Compare(key=_key(k), target=rpc_pb2.Compare.CREATE,
                                  result=rpc_pb2.Compare.EQUAL, create_revision=0)
        put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=_key(k),
                                                               value=str(new).encode()))

        async def call() -> Value:
            if client.rk is not None:
                guard = Compare.create_revision(_key(k)).equal(0) if expected is None \
                    else Compare.value(_key(k)).equal(str(expected))
                txn = client.rk.txn().if_(guard).then(Op.put(_key(k), str(new)))
                return (await txn.commit()).succeeded  # deadline: the client's default
            resp = await client.kv.Txn(rpc_pb2.TxnRequest(compare=[cmp], success=[put]),
                                       timeout=client.timeout_s)
            return bool(resp.succeeded)
        _, ok = await client.op("cas", k, (expected, new), call)
        if ok is True:
            self._seen[(client.number, k)] = new

    async def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            for k in range(self.keys):
                async def call(k: int = k, c: Client = client) -> Value:
                    resp = await c.kv.Range(rpc_pb2.RangeRequest(key=_key(k)),
                                            timeout=c.timeout_s)
                    return _decode(resp.kvs)
                await client.op("read", k, None, call, read_only=True)

    def check(self, history: History) -> list[Check]:
        ops = client_ops(history)
        result = check_linearizable(ops, RegisterModel(), time_budget_s=120.0,
                                    clock=time.monotonic)
        counts = count_outcomes(ops)
        counts["keys"] = len(result.keys)
        counts["illegal_keys"] = sum(k.outcome is Outcome.ILLEGAL for k in result.keys)
        counts["unknown_keys"] = sum(k.outcome is Outcome.UNKNOWN for k in result.keys)
        window: list[int] = []
        if result.failures:
            window = [op.index for op in result.failures[0].window()]
        valid = {Outcome.OK: True, Outcome.ILLEGAL: False}.get(result.outcome)
        return [Check("linearizable", valid, counts, result.render(), window=window)]

