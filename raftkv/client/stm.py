"""Software transactional memory over the KV API (etcd's ``concurrency.STM``)::

    async def transfer(stm: STM) -> None:
        a = int(await stm.get("acct/a") or b"0")
        b = int(await stm.get("acct/b") or b"0")
        stm.put("acct/a", str(a - 10))
        stm.put("acct/b", str(b + 10))

    await client.stm(transfer)

``fn`` reads through :meth:`STM.get` (each read records the key's mod revision) and writes
through :meth:`STM.put` / :meth:`STM.delete` (buffered: nothing is sent). When ``fn``
returns, one txn applies the writes *if* no key that was read has changed since; otherwise
``fn`` runs again on fresh reads (with jittered backoff), up to ``retries`` times, then
:class:`~raftkv.errors.ConflictError`. ``fn`` may therefore run several times: keep side
effects out of it. Its return value is returned.

Isolation:

* ``"serializable"`` (default): every read is at the revision of the first read (one
  consistent snapshot), and the commit also checks that no key written was changed after
  that snapshot.
* ``"repeatable_read"``: each key is read at the latest revision once, then from cache;
  the commit checks the keys read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from raftkv.client.txn import Compare, Op, Txn
from raftkv.client.types import KeyLike, KeyValue, to_bytes
from raftkv.errors import CompactedError, ConflictError

if TYPE_CHECKING:
    from raftkv.client.client import Client

Isolation = Literal["serializable", "repeatable_read"]
T = TypeVar("T")
_DELETE = object()


class STM:
    """The view ``fn`` works on during one attempt (see the module docstring)."""

    _sync_proxy = True

    def __init__(self, client: Client, isolation: Isolation) -> None:
        if isolation not in ("serializable", "repeatable_read"):
            raise ValueError(f"isolation {isolation!r}: use 'serializable' or "
                             f"'repeatable_read'")
        self._client = client
        self._isolation = isolation
        self._reads: dict[bytes, KeyValue | None] = {}
        self._writes: dict[bytes, tuple[bytes, int] | object] = {}
        self._rev = 0

    async def get_kv(self, key: KeyLike) -> KeyValue | None:
        """The key as this transaction sees it (buffered writes included)."""
        k = to_bytes(key)
        if k in self._writes:
            w = self._writes[k]
            if w is _DELETE:
                return None
            assert isinstance(w, tuple)
            return KeyValue(k, w[0], 0, 0, 0, w[1])
        if k not in self._reads:
            r = await self._client.range(k, revision=self._rev)
            if not self._rev and self._isolation == "serializable":
                self._rev = r.header.revision
            self._reads[k] = r.kvs[0] if r.kvs else None
        return self._reads[k]

    async def get(self, key: KeyLike) -> bytes | None:
        """The key's value (``None`` if it does not exist)."""
        kv = await self.get_kv(key)
        return None if kv is None else kv.value

    async def prefetch(self, keys: Sequence[KeyLike]) -> None:
        """Read several keys at once (one round trip each, concurrently)."""
        if keys and not self._rev and self._isolation == "serializable":
            await self.get_kv(keys[0])
        await asyncio.gather(*(self.get_kv(k) for k in keys))

    def put(self, key: KeyLike, value: KeyLike, *, lease: int = 0) -> None:
        """Buffer a put (applied at commit)."""
        self._writes[to_bytes(key)] = (to_bytes(value, "value"), lease)

    def delete(self, key: KeyLike) -> None:
        """Buffer a delete (applied at commit)."""
        self._writes[to_bytes(key)] = _DELETE

    def _txn(self) -> Txn:
        compares = [Compare.mod_revision(k).equal(kv.mod_revision if kv else 0)
                    for k, kv in self._reads.items()]
        if self._isolation == "serializable" and self._rev:
            compares += [Compare.mod_revision(k).less(self._rev + 1)
                         for k in self._writes if k not in self._reads]
        ops = [Op.delete(k) if w is _DELETE else Op.put(k, w[0], lease=w[1])  # type: ignore[index]
               for k, w in self._writes.items()]
        return self._client.txn().if_(*compares).then(*ops)


async def run_stm(client: Client, fn: Callable[[STM], Awaitable[T]], *,
                  isolation: Isolation = "serializable", retries: int = 50,
                  prefetch: Sequence[KeyLike] = ()) -> T:
    """Run ``fn`` optimistically until it commits without conflict (module docstring).

    Raises:
        ConflictError: ``retries`` attempts all conflicted.
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    rng = random.Random()
    for attempt in range(retries):
        stm = STM(client, isolation)
        try:
            if prefetch:
                await stm.prefetch(prefetch)
            result = await fn(stm)
        except CompactedError:
            continue  # the snapshot revision was compacted: read again
        if not stm._writes:
            return result
        if (await stm._txn().commit()).succeeded:
            return result
        await asyncio.sleep(rng.uniform(0, min(0.5, 0.005 * 2 ** min(attempt, 7))))
    raise ConflictError(f"raftkv: STM transaction conflicted {retries} times")
