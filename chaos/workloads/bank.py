"""``bank``: transfers between accounts as txns; reads of all balances at one revision.

Accounts ``chaos/bank/<a>`` start with :data:`INITIAL` each (written once, in one txn). A
transfer reads both balances, then commits a txn that compares both keys' ``mod_revision``
with what it read and moves the amount; a failed comparison is a definite ``fail``. A read
is one Range over the prefix (one revision), alternately linearizable and serializable —
even a stale serializable read must see a state some prefix of the transfers produced.
The checker: every read sums to the total and no balance is negative.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence

from chaos.checkers import check_bank
from chaos.client import Client, Refused
from chaos.history import History, Value
from chaos.workloads import Check, Workload, client_ops, count_outcomes, retry_final
from raftkv.wire.pb.etcdserverpb import rpc_pb2
from raftkv.wire.pb.mvccpb import kv_pb2

__all__ = ["BankWorkload"]

PREFIX = b"chaos/bank/"
INITIAL = 10


def _end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _account(key: bytes) -> str:
    return key[len(PREFIX):].decode()


class BankWorkload(Workload):
    """See the module docstring."""

    name = "bank"
    prefix = PREFIX

    def __init__(self, rng: random.Random, *, accounts: int = 5) -> None:
        super().__init__(rng)
        self.accounts = [f"a{i}" for i in range(accounts)]
        self.total = INITIAL * accounts

    async def setup(self, client: Client) -> None:
        puts = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(
            key=PREFIX + a.encode(), value=str(INITIAL).encode())) for a in self.accounts]
        await client.kv.Txn(rpc_pb2.TxnRequest(success=puts), timeout=10.0)

    async def _range(self, client: Client, serializable: bool) -> rpc_pb2.RangeResponse:
        resp: rpc_pb2.RangeResponse = await client.kv.Range(
            rpc_pb2.RangeRequest(key=PREFIX, range_end=_end(PREFIX), serializable=serializable),
            timeout=client.timeout_s)
        return resp

    async def read(self, client: Client, *, serializable: bool = False) -> Value:
        async def call() -> Value:
            resp = await self._range(client, serializable)
            return {_account(kv.key): int(kv.value) for kv in resp.kvs}
        return (await client.op("read", None, None, call, read_only=True))[1]

    async def step(self, client: Client) -> None:
        if self.rng.random() < 0.4:
            await self.read(client, serializable=self.rng.random() < 0.5)
            return
        src, dst = self.rng.sample(self.accounts, 2)
        try:
            snap = await self._range(client, False)
        except Exception:  # not an operation: nothing to record
            return
        kvs = {_account(kv.key): kv for kv in snap.kvs}
        if src not in kvs or dst not in kvs or int(kvs[src].value) <= 0:
            return
        amount = self.rng.randint(1, min(5, int(kvs[src].value)))
        await self._transfer(client, src, dst, amount, kvs)

    async def _transfer(self, client: Client, src: str, dst: str, amount: int,
                        kvs: Mapping[str, kv_pb2.KeyValue]) -> None:
        a, b = kvs[src], kvs[dst]
        cmps = [rpc_pb2.Compare(key=kv.key, target=rpc_pb2.Compare.MOD,
                                result=rpc_pb2.Compare.EQUAL,
                                mod_revision=kv.mod_revision)
                for kv in (a, b)]
        puts = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(
            key=kv.key, value=str(int(kv.value) + delta).encode()))
            for kv, delta in ((a, -amount), (b, amount))]

        async def call() -> Value:
            resp = await client.kv.Txn(rpc_pb2.TxnRequest(compare=cmps, success=puts),
                                       timeout=client.timeout_s)
            if not resp.succeeded:
                raise Refused("balances changed since read")
            return None
        await client.op("transfer", None, {"from": src, "to": dst, "amount": amount}, call)

    async def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            await retry_final(client, "read", functools.partial(self._final_read, client))

    async def _final_read(self, client: Client) -> Value:
        resp = await self._range(client, False)
        return {_account(kv.key): int(kv.value) for kv in resp.kvs}

    def check(self, history: History) -> list[Check]:
        ops = client_ops(history)
        result = check_bank(ops, total=self.total, accounts=self.accounts)
        counts = count_outcomes(ops)
        counts["reads"] = result.reads
        counts["transfers_ok"] = sum(o.f == "transfer" and o.status.value == "ok" for o in ops)
        counts["anomalies"] = len(result.anomalies)
        window = [a.op.index for a in result.anomalies[:20]]
        return [Check("bank", result.valid, counts, result.render(), window=window)]
