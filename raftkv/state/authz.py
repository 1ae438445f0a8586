"""The one authorizer: what a request touches (its *footprint*), and whether a user may.

etcd checks permissions in many places (``server/etcdserver/apply/auth.go``,
``v3_server.go``, ``server/auth/store.go``), and each of its recent RBAC bypasses was one
place that forgot part of a request: nested txn ops (CVE-2026-33343), a Put's ``prev_kv`` or
lease inside a txn (CVE-2026-44283), the keys a lease reveals (CVE-2023-32082), a watch
range checked after rewriting ``b"\\0"`` (CVE-2026-73499). Here every request is reduced to
one tuple of :class:`Need` values by a function of this module, and :class:`Grants` checks
that tuple against a user's permissions; nothing else decides.

Key ranges follow etcd's conventions (see :mod:`raftkv.state.commands`), and a footprint
keeps each range exactly as the request carried it: ``range_end == b""`` is the one key,
``range_end == b"\\0"`` is every key ``>= key``, anything else is ``[key, range_end)``.
Checking follows ``server/auth/range_perm_cache.go``: a user's grants are merged, per
permission, into a set of intervals (READWRITE counts for both); a one-key need passes if
some interval holds the key, a range need only if the intervals together contain all of it.

Where etcd's interval tree gives no clear answer this fails closed: a range need whose
``range_end`` is neither ``b""``, ``b"\\0"`` nor above ``key`` (it selects no key) is
checked as the one key ``key``, and a :class:`Need` asking for no permission is denied.

Pure: no clock, no I/O. Which keys are attached to a lease is state, so the caller passes
it in (``lease_keys``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import IntFlag
from typing import assert_never

from raftkv._frozen import fast_init
from raftkv.state.commands import DeleteRange, Op, Put, Range, Txn

FROM_KEY = b"\0"
"""The ``range_end`` meaning "every key ``>= key``" (etcd's ``WithFromKey``)."""

_PB_TO_PERM = {0: 1, 1: 2, 2: 3}  # authpb.Permission.Type -> Perm value


class Perm(IntFlag):
    """A permission, as bits: READWRITE is READ | WRITE.

    ``authpb.Permission.Type`` numbers them differently (READ=0, WRITE=1, READWRITE=2);
    convert with :meth:`from_pb` and :meth:`to_pb`.
    """

    READ = 1
    WRITE = 2
    READWRITE = 3

    @classmethod
    def from_pb(cls, t: int) -> Perm:
        """The permission of ``authpb.Permission.Type`` value ``t``.

        Raises:
            ValueError: ``t`` is not 0, 1 or 2.
        """
        try:
            return cls(_PB_TO_PERM[t])
        except KeyError:
            raise ValueError(f"unknown authpb permission type {t}") from None

    def to_pb(self) -> int:
        """This permission as an ``authpb.Permission.Type`` value.

        Raises:
            ValueError: no permission bit is set.
        """
        if not self:
            raise ValueError("Perm(0) has no authpb permission type")
        return int(self) - 1


READ, WRITE, READWRITE = Perm.READ, Perm.WRITE, Perm.READWRITE


@fast_init
@dataclass(frozen=True, slots=True)
class Need:
    """Permission ``perm`` on ``key``/``range_end`` (etcd's range conventions), which a
    request needs. READWRITE needs both."""

    key: bytes
    range_end: bytes
    perm: Perm


@fast_init
@dataclass(frozen=True, slots=True)
class Grant:
    """``authpb.Permission``: ``perm`` on ``key``/``range_end`` (etcd's range conventions)."""

    key: bytes
    range_end: bytes
    perm: Perm


def valid_permission_range(key: bytes, range_end: bytes) -> bool:
    """etcd 3.5.8+ ``isValidPermissionRange``: ``key`` is non-empty and ``range_end`` is
    empty (one key), above ``key``, or ``b"\\0"`` (from key)."""
    return bool(key) and (not range_end or range_end > key or range_end == FROM_KEY)


def prefix_end(prefix: bytes) -> bytes:
    """etcd's ``GetPrefixRangeEnd``: the ``range_end`` that selects every key starting with
    ``prefix``; ``b"\\0"`` (to the end) when there is no such bound (every byte 0xff, or no
    byte)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return FROM_KEY
    return stripped[:-1] + bytes((stripped[-1] + 1,))


# ------------------------------------------------------------------ footprints

LeaseKeys = Callable[[int], Iterable[bytes]]
"""The keys currently attached to a lease id (none for an unknown lease)."""


def footprint(op: Op, lease_keys: LeaseKeys) -> tuple[Need, ...]:
    """Every permission a KV request needs, without duplicates (etcd ``apply/auth.go``).

    * Range: READ on its range.
    * Put: WRITE on its key; READ on it too with ``prev_kv``; with a lease, WRITE on every
      key already attached to the lease (``checkLeasePuts``).
    * DeleteRange: WRITE on its range; READ on it too with ``prev_kv``.
    * Txn: READ on every compare's key or range, and the footprint of every op of *both*
      branches, nested txns included, whichever branch would run.

    The walk uses an explicit stack, so no nesting depth can exhaust Python's.

    Raises:
        AssertionError: an op that is not a KV request (``typing.assert_never``).
    """
    needs: dict[Need, None] = {}
    attached: dict[int, tuple[bytes, ...]] = {}
    stack: list[Op] = [op]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Txn):
            for cmp in cur.compare:
                needs[Need(cmp.key, cmp.range_end, READ)] = None
            stack.extend(reversed((*cur.success, *cur.failure)))
        elif isinstance(cur, Range):
            needs[Need(cur.key, cur.range_end, READ)] = None
        elif isinstance(cur, Put):
            needs.update(dict.fromkeys(_put_needs(cur, lease_keys, attached)))
        elif isinstance(cur, DeleteRange):
            needs[Need(cur.key, cur.range_end, WRITE)] = None
            if cur.prev_kv:
                needs[Need(cur.key, cur.range_end, READ)] = None
        else:  # pragma: no cover - fails closed on a caller's type error
            assert_never(cur)
    return tuple(needs)


def _put_needs(put: Put, lease_keys: LeaseKeys,
               attached: dict[int, tuple[bytes, ...]]) -> Iterator[Need]:  # fmt: skip
    yield Need(put.key, b"", WRITE)
    if put.prev_kv:
        yield Need(put.key, b"", READ)
    if put.lease != 0:
        keys = attached.get(put.lease)
        if keys is None:
            keys = attached[put.lease] = tuple(lease_keys(put.lease))
        for key in keys:
            yield Need(key, b"", WRITE)


def watch_footprint(key: bytes, range_end: bytes) -> tuple[Need, ...]:
    """A watch create: READ on its range as received, before any rewrite of ``b"\\0"``
    (CVE-2026-73499)."""
    return (Need(key, range_end, READ),)


def lease_keys_footprint(keys: Iterable[bytes], perm: Perm) -> tuple[Need, ...]:
    """``perm`` on each of a lease's attached ``keys``: WRITE for LeaseRevoke and
    LeaseKeepAlive, READ for LeaseTimeToLive(keys=True) and LeaseLeases."""
    return tuple(dict.fromkeys(Need(key, b"", perm) for key in keys))


def lock_footprint(name: bytes, attached: Iterable[bytes] = ()) -> tuple[Need, ...]:
    """v3lock ``Lock(name)``: READWRITE on the prefix ``name + b"/"`` (the lock puts its
    key there, reads and watches the prefix). ``attached`` are the keys already attached to
    the lock's lease, which the put of the lock key needs WRITE on."""
    return _prefix_footprint(name, attached)


def election_footprint(name: bytes, attached: Iterable[bytes] = ()) -> tuple[Need, ...]:
    """v3election (Campaign, Proclaim, Resign, Leader, Observe) on ``name``: READWRITE on
    the prefix ``name + b"/"``; ``attached`` as for :func:`lock_footprint`."""
    return _prefix_footprint(name, attached)


def _prefix_footprint(name: bytes, attached: Iterable[bytes]) -> tuple[Need, ...]:
    prefix = name + b"/"
    needs = {Need(prefix, prefix_end(prefix), READWRITE): None}
    needs.update(dict.fromkeys(lease_keys_footprint(attached, WRITE)))
    return tuple(needs)


# ------------------------------------------------------------------ checking


def _need_interval(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    """A need as the half-open ``[start, end)`` it must be covered on (``end=None``: no
    upper bound). A range selecting no key is checked as the key itself (fail closed)."""
    if range_end == FROM_KEY:
        return key, None
    if range_end > key:
        return key, range_end
    return key, key + b"\0"  # the one key (range_end == b""), or an empty range


def _grant_interval(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None] | None:
    """A grant as ``[start, end)``; ``None`` for a range holding no key (etcd < 3.5.8
    could store one)."""
    if range_end == FROM_KEY:
        return key, None
    if range_end == b"":
        return key, key + b"\0"
    return (key, range_end) if range_end > key else None


@dataclass(frozen=True, slots=True)
class _IntervalSet:
    """Disjoint, non-adjacent half-open intervals sorted by start (``end=None``: no bound).

    As a gap between two of them would be ``[end, next_start)``, non-empty, a single
    interval of the set contains all of whatever the set covers contiguously.
    """

    starts: tuple[bytes, ...]
    ends: tuple[bytes | None, ...]

    @classmethod
    def merged(cls, intervals: Iterable[tuple[bytes, bytes | None]]) -> _IntervalSet:
        """Sort, then join every interval that overlaps or touches the previous one."""
        starts: list[bytes] = []
        ends: list[bytes | None] = []
        for start, end in sorted(intervals, key=lambda iv: iv[0]):
            if starts and (ends[-1] is None or start <= ends[-1]):
                last = ends[-1]
                ends[-1] = None if last is None or end is None else max(last, end)
            else:
                starts.append(start)
                ends.append(end)
        return cls(tuple(starts), tuple(ends))

    def covers(self, start: bytes, end: bytes | None) -> bool:
        """Whether ``[start, end)`` (non-empty) lies inside one interval of the set."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0:
            return False
        have = self.ends[i]
        return have is None or (end is not None and end <= have)


class Grants:
    """One user's permissions, merged over all of its roles, ready to check needs.

    Built once per user (and auth revision); each check is a binary search per permission.
    ``root=True`` (a user holding role ``root``) allows everything.
    """

    __slots__ = ("_read", "_root", "_write")

    def __init__(self, grants: Iterable[Grant], *, root: bool = False) -> None:
        read: list[tuple[bytes, bytes | None]] = []
        write: list[tuple[bytes, bytes | None]] = []
        for grant in grants:
            iv = _grant_interval(grant.key, grant.range_end)
            if iv is None:
                continue
            if grant.perm & READ:
                read.append(iv)
            if grant.perm & WRITE:
                write.append(iv)
        self._root = root
        self._read = _IntervalSet.merged(read)
        self._write = _IntervalSet.merged(write)

    @property
    def root(self) -> bool:
        """Whether everything is allowed."""
        return self._root

    def allows(self, need: Need) -> bool:
        """Whether ``need`` is granted: a one-key need if some interval of its permission
        holds the key, a range need if those intervals contain all of the range."""
        if self._root:
            return True
        perm = need.perm._value_  # plain ints: IntFlag arithmetic is slow on this path
        if perm not in (1, 2, 3):
            return False
        start, end = _need_interval(need.key, need.range_end)
        if perm & 1 and not self._read.covers(start, end):
            return False
        return not (perm & 2 and not self._write.covers(start, end))

    def allows_op(self, op: Op, lease_keys: LeaseKeys) -> bool:
        """``allows_all(footprint(op, lease_keys))``, with the two commonest requests — a
        Range, and a Put with neither ``prev_kv`` nor a lease — checked without building
        their footprint (the same answer: a property test compares the two)."""
        if self._root:
            return True
        cls = type(op)
        if cls is Put and not op.prev_kv and not op.lease:  # type: ignore[union-attr]
            key = op.key  # type: ignore[union-attr]
            return self._write.covers(key, key + b"\0")
        if cls is Range:
            start, end = _need_interval(op.key, op.range_end)  # type: ignore[union-attr]
            return self._read.covers(start, end)
        return self.allows_all(footprint(op, lease_keys))

    def allows_all(self, needs: Iterable[Need]) -> bool:
        """Whether every need of ``needs`` (a footprint) is granted."""
        return self._root or all(self.allows(need) for need in needs)

    def __repr__(self) -> str:
        return f"Grants(read={self._read}, write={self._write}, root={self._root})"
