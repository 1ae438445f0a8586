"""The lease table: grant, revoke, renew, checkpoint, and the keys attached to each lease.

Time is never read here. A lease's deadline is ``expiry_ms``, computed from the ``now_ms``
carried by the command that granted, renewed or checkpointed it. Which leases are due is a
*query*, :meth:`LeaseTable.expired`, asked by the leader with its own clock; the leader then
proposes :class:`~raftkv.state.commands.LeaseRevoke` for them. Lease expiry therefore
survives leader changes: a new leader sees the replicated deadlines (etcd resets them unless
checkpointing is on; we keep them, and :class:`~raftkv.state.commands.LeaseCheckpoint` can
re-base them on the leader's clock).

Attachments are derived state: the keys of a lease are the live keys whose ``lease`` field is
its id. They are kept in memory, updated from the events of each request, and rebuilt from
the key space by :meth:`LeaseTable.reload`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from raftkv.errors import LeaseNotFoundError
from raftkv.state import schema
from raftkv.state.backend import Backend
from raftkv.state.commands import (
    KeyValue,
    LeaseCheckpoint,
    LeaseGrant,
    LeaseRenew,
)
from raftkv.state.errors import MSG_LEASE_NOT_FOUND, LeaseExistsError, LeaseTTLTooLargeError
from raftkv.state.mvcc import WriteTxn

MAX_LEASE_TTL_S = 9_000_000_000
"""etcd's ``MaxLeaseTTL``."""

NO_LEASE = 0

_RECORD = struct.Struct(">qq")  # ttl_s, expiry_ms
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _deadline(now_ms: int, delta_ms: int) -> int:
    """``now_ms + delta_ms`` saturated to int64, so that no proposed value can make every
    replica fail while persisting it."""
    return max(_INT64_MIN, min(_INT64_MAX, now_ms + delta_ms))


@dataclass(slots=True)
class Lease:
    """One lease.

    Invariants: ``id != 0``; ``keys`` are exactly the live keys attached to it.
    """

    id: int
    ttl_s: int
    expiry_ms: int
    keys: set[bytes] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """What ``LeaseTimeToLive`` reports. ``remaining_ms`` may be negative (overdue)."""

    id: int
    ttl_s: int
    remaining_ms: int
    keys: tuple[bytes, ...]


def _lease_key(lease_id: int) -> bytes:
    return schema.LEASE_PREFIX + schema.ordered_id(lease_id)


def lease_not_found() -> LeaseNotFoundError:
    """etcd's ``ErrLeaseNotFound`` with its wire text."""
    return LeaseNotFoundError(MSG_LEASE_NOT_FOUND)


class LeaseTable:
    """All leases, by id.

    Invariants:
        * every lease in ``_leases`` has a record under ``b"l" + id`` in the backend
          (once its request is committed).
        * a key is attached to at most one lease.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._leases: dict[int, Lease] = {}

    def reload(self, live: Iterable[KeyValue]) -> None:
        """Rebuild from the backend's lease records and the live keys ``live``."""
        self._leases = {}
        end = schema.next_prefix(schema.LEASE_PREFIX)
        for bkey, value in self._backend.scan(schema.LEASE_PREFIX, end):
            lease_id = schema.decode_ordered_id(bkey[len(schema.LEASE_PREFIX) :])
            ttl_s, expiry_ms = _RECORD.unpack(value)
            self._leases[lease_id] = Lease(lease_id, ttl_s, expiry_ms)
        if not self._leases:
            return  # nothing to attach: do not read every live key (restart time)
        for kv in live:
            if kv.lease != NO_LEASE and kv.lease in self._leases:
                self._leases[kv.lease].keys.add(kv.key)

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def get(self, lease_id: int) -> Lease | None:
        """The lease with this id, or ``None``. Do not mutate it."""
        return self._leases.get(lease_id)

    def ids(self) -> list[int]:
        """Every lease id, ascending."""
        return sorted(self._leases)

    def expired(self, now_ms: int) -> list[int]:
        """Ids of the leases whose deadline is ``<= now_ms``, earliest deadline first.

        A query for the leader, which proposes their revocation; it changes nothing.
        """
        due = [lease for lease in self._leases.values() if lease.expiry_ms <= now_ms]
        due.sort(key=lambda lease: (lease.expiry_ms, lease.id))
        return [lease.id for lease in due]

    def status(self, lease_id: int, now_ms: int) -> LeaseStatus | None:
        """``LeaseTimeToLive`` for ``lease_id`` at ``now_ms``, or ``None`` if unknown."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return None
        keys = tuple(sorted(lease.keys))
        return LeaseStatus(lease.id, lease.ttl_s, lease.expiry_ms - now_ms, keys)

    # ------------------------------------------------------------------ commands

    def grant(self, txn: WriteTxn, cmd: LeaseGrant) -> Lease:
        """Create a lease (etcd ``lessor.Grant``).

        Raises:
            LeaseNotFoundError: ``cmd.id`` is 0 (the leader must choose the id).
            LeaseTTLTooLargeError: ``cmd.ttl_s`` exceeds :data:`MAX_LEASE_TTL_S`.
            LeaseExistsError: a lease with this id exists.
        """
        if cmd.id == NO_LEASE:
            raise lease_not_found()
        if cmd.ttl_s > MAX_LEASE_TTL_S:
            raise LeaseTTLTooLargeError()
        if cmd.id in self._leases:
            raise LeaseExistsError()
        lease = Lease(cmd.id, cmd.ttl_s, _deadline(cmd.now_ms, cmd.ttl_s * 1000))
        self._leases[cmd.id] = lease
        self._persist(txn, lease)
        return lease

    def revoke(self, txn: WriteTxn, lease_id: int) -> None:
        """Delete the lease and its keys, in key order, in the request's one revision.

        Raises:
            LeaseNotFoundError: no such lease.
        """
        lease = self._leases.get(lease_id)
        if lease is None:
            raise lease_not_found()
        for key in sorted(lease.keys):
            txn.delete_range(key, b"")
        del self._leases[lease_id]
        txn.stage(_lease_key(lease_id), None)

    def renew(self, txn: WriteTxn, cmd: LeaseRenew) -> Lease:
        """Restart the lease's TTL at ``cmd.now_ms``.

        A lease whose deadline had passed at ``cmd.now_ms`` is not revived, even if its
        revoke is not applied yet (etcd answers such a keep-alive with TTL 0 too): a holder
        that was paused past its TTL must not get its lock back.

        Raises:
            LeaseNotFoundError: no such lease, or it had expired.
        """
        lease = self._leases.get(cmd.id)
        if lease is None or lease.expiry_ms <= cmd.now_ms:
            raise lease_not_found()
        lease.expiry_ms = _deadline(cmd.now_ms, lease.ttl_s * 1000)
        self._persist(txn, lease)
        return lease

    def checkpoint(self, txn: WriteTxn, cmd: LeaseCheckpoint) -> None:
        """Set each listed lease to expire ``remaining_ms`` after ``cmd.now_ms``."""
        for item in cmd.checkpoints:
            lease = self._leases.get(item.id)
            if lease is not None:
                lease.expiry_ms = _deadline(cmd.now_ms, item.remaining_ms)
                self._persist(txn, lease)

    def observe(self, changes: Iterable[tuple[bytes, int, int]]) -> None:
        """Update attachments from one request's ``(key, old lease, new lease)`` changes
        (:attr:`WriteTxn.lease_changes`), in order."""
        leases = self._leases
        for key, old_id, new_id in changes:
            if old_id != NO_LEASE:
                old = leases.get(old_id)
                if old is not None:
                    old.keys.discard(key)
            if new_id != NO_LEASE:
                new = leases.get(new_id)
                if new is not None:
                    new.keys.add(key)

    @staticmethod
    def _persist(txn: WriteTxn, lease: Lease) -> None:
        txn.stage(_lease_key(lease.id), _RECORD.pack(lease.ttl_s, lease.expiry_ms))
