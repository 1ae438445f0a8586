"""``Lock``: a distributed lock with a fencing token, and writes guarded by it.

::

    async with client.lock("jobs/nightly", ttl=10) as lock:
        print(lock.fencing_token)              # the lock key's create revision
        await lock.put("jobs/nightly/owner", "me")   # only while the lock is held

A lock is only safe with fencing: a holder that pauses (GC, SIGSTOP, a slow disk) longer
than its lease's TTL loses the lock without knowing, and another client gets it. Writes made
through :meth:`Lock.put`, :meth:`Lock.delete` or :meth:`Lock.txn` compare the lock key's
create revision with :attr:`Lock.fencing_token` in the same transaction, so they are
applied only while this client still holds the lock; otherwise they raise
:class:`~raftkv.errors.LockLostError` and change nothing.

The lock is the server's ``v3lockpb.Lock`` service (etcd's ``concurrency.Mutex`` recipe:
the waiter with the lowest create revision under ``name/`` owns it), held through a lease
that this object keeps alive (:class:`~raftkv.client.lease.Lease`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from raftkv.client.lease import Lease
from raftkv.client.txn import Compare, Op, Txn
from raftkv.client.types import DeleteResponse, KeyLike, PutResponse, TxnResponse
from raftkv.errors import LeaseLostError, LockLostError, RaftKVError
from raftkv.wire.pb.v3lockpb import v3lock_pb2

if TYPE_CHECKING:
    from raftkv.client.client import Client


class Lock:
    """A distributed lock (see the module docstring).

    Attributes:
        name: the lock's name (waiter keys live under ``name/``).
        key: the key that holds the lock (``b""`` until acquired).
        fencing_token: the create revision of :attr:`key` (0 until acquired).
        lease: the lease the lock is held through.
    """

    _sync_proxy = True

    def __init__(self, client: Client, name: bytes, *, ttl: int = 10,
                 timeout: float | None = None) -> None:
        if not name:
            raise ValueError("lock name must not be empty")
        self._client = client
        self.name = name
        self.ttl = ttl
        self.timeout = timeout
        self.key = b""
        self.fencing_token = 0
        self.lease: Lease = client.lease(ttl)

    async def acquire(self) -> Lock:
        """Wait until the lock is ours (at most ``timeout`` seconds; ``None``: forever).

        Raises:
            DeadlineExceededError: the timeout passed (nothing is left behind).
            LockLostError: the lease expired while waiting.
        """
        await self.lease.grant()
        try:
            req = v3lock_pb2.LockRequest(name=self.name, lease=self.lease.id)
            # Locking again with the same lease is idempotent on the server: safe to retry.
            r = await self._client._call("lock", "Lock", req, blocking=True,
                                         timeout=self.timeout)
            kv = await self._client.get(r.key)
            if kv is None or kv.lease != self.lease.id:
                raise LockLostError(f"raftkv: lock {self.name!r} lost right after acquiring")
            self.key, self.fencing_token = r.key, kv.create_revision
        except BaseException:
            with contextlib.suppress(RaftKVError):
                await self.lease.revoke()  # drops our waiter key
            raise
        return self

    async def release(self) -> None:
        """Give the lock up (unlock, then revoke the lease). Releasing a lost lock is fine."""
        try:
            if self.key:
                with contextlib.suppress(RaftKVError):
                    await self._client._call("lock", "Unlock",
                                             v3lock_pb2.UnlockRequest(key=self.key))
        finally:
            with contextlib.suppress(RaftKVError):
                await self.lease.revoke()
            self.key = b""

    async def __aenter__(self) -> Lock:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    # -- guarded writes ------------------------------------------------------------------
    def guard(self) -> Compare:
        """The compare that holds only while this lock is held."""
        if not self.fencing_token:
            raise LockLostError(f"raftkv: lock {self.name!r} is not held")
        return Compare.create_revision(self.key).equal(self.fencing_token)

    def txn(self) -> Txn:
        """A transaction that runs only while the lock is held: build it as usual
        (``if_/then/otherwise``); ``commit()`` returns its result, or raises
        :class:`LockLostError` (having changed nothing) if the lock is no longer ours."""
        return Txn(committer=self._commit_guarded)

    async def _commit_guarded(self, inner: Txn) -> TxnResponse:
        outer = Txn().if_(self.guard()).then(Op.txn(inner))
        r = await self._client._commit(outer)
        if not r.succeeded:
            raise LockLostError(f"raftkv: lock {self.name!r} (fencing token "
                                f"{self.fencing_token}) is no longer held; nothing written")
        inner_r = r.responses[0]
        assert isinstance(inner_r, TxnResponse)
        return inner_r

    async def put(self, key: KeyLike, value: KeyLike, *, lease: int = 0) -> PutResponse:
        """Put ``key`` only while the lock is held (else :class:`LockLostError`)."""
        r = await self.txn().then(Op.put(key, value, lease=lease)).commit()
        put = r.responses[0]
        assert isinstance(put, PutResponse)
        return put

    async def delete(self, key: KeyLike, *, prefix: bool = False) -> DeleteResponse:
        """Delete ``key`` (or a prefix) only while the lock is held."""
        r = await self.txn().then(Op.delete(key, prefix=prefix)).commit()
        d = r.responses[0]
        assert isinstance(d, DeleteResponse)
        return d

    async def is_held(self) -> bool:
        """Ask the cluster whether the lock key still carries our fencing token."""
        if not self.key:
            return False
        kv = await self._client.get(self.key)
        return kv is not None and kv.create_revision == self.fencing_token

    def check(self) -> None:
        """Raise :class:`LockLostError` unless the lock is held and its lease is alive by
        the lease's own check (which also reads the clock: after a pause longer than the
        TTL this raises even before the keep-alive task notices). A local check: only
        guarded writes are safe against a pause right after it."""
        if not self.fencing_token:
            raise LockLostError(f"raftkv: lock {self.name!r} is not held")
        try:
            self.lease.check()
        except LeaseLostError as exc:
            raise LockLostError(f"raftkv: lock {self.name!r} lost with its lease: "
                                f"{exc}") from exc
