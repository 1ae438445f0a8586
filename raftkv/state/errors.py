"""Errors raised by the replicated state machine, beyond :mod:`raftkv.errors`.

The state machine raises these, plus classes of :mod:`raftkv.errors` (the client-visible
ones -- ``FutureRevisionError``, ``LeaseExistsError``, ``LeaseTTLTooLargeError`` -- are
defined there, so that clients catch the same classes, and re-exported here)::

    RaftKVError
    ├── InvalidRequestError
    │   └── StaleRequestError      a de-duplicated client retried an older sequence number
    ├── FutureRevisionError        OutOfRange "mvcc: required revision is a future revision"
    ├── LeaseExistsError           FailedPrecondition "etcdserver: lease already exists"
    └── LeaseTTLTooLargeError      OutOfRange "etcdserver: too large lease TTL"

    ApplyError (RuntimeError)      fail-stop: a log entry cannot be applied deterministically

The mvcc-level messages follow :class:`raftkv.errors.CompactedError` and carry etcd's ``mvcc``
text without the ``etcdserver:`` prefix; the wire layer adds the prefix, as etcd's
``rpctypes`` table does. All other messages are etcd's wire text byte for byte.
"""

from __future__ import annotations

from raftkv.errors import (  # defined there so that clients can catch them too
    STALE_REQUEST_PREFIX,
    FutureRevisionError,
    InvalidRequestError,
    LeaseExistsError,
    LeaseTTLTooLargeError,
)

MSG_COMPACTED = "mvcc: required revision has been compacted"
MSG_FUTURE_REV = "mvcc: required revision is a future revision"
MSG_EMPTY_KEY = "etcdserver: key is not provided"
MSG_KEY_NOT_FOUND = "etcdserver: key not found"
MSG_VALUE_PROVIDED = "etcdserver: value is provided"
MSG_LEASE_PROVIDED = "etcdserver: lease is provided"
MSG_TOO_MANY_OPS = "etcdserver: too many operations in txn request"
MSG_DUPLICATE_KEY = "etcdserver: duplicate key given in txn request"
MSG_LEASE_NOT_FOUND = "etcdserver: requested lease not found"
MSG_LEASE_EXISTS = "etcdserver: lease already exists"
MSG_LEASE_TTL_TOO_LARGE = "etcdserver: too large lease TTL"

__all__ = [
    "ApplyError",
    "FutureRevisionError",
    "LeaseExistsError",
    "LeaseTTLTooLargeError",
    "StaleRequestError",
]


class StaleRequestError(InvalidRequestError):
    """A de-duplicated request whose earlier attempt may have been applied, but whose
    record is gone (below the client's acknowledged floor, or the client's records were
    evicted). It is not applied; the client cannot know whether the earlier attempt was.
    Messages start with :data:`STALE_PREFIX`."""


STALE_PREFIX = STALE_REQUEST_PREFIX


class ApplyError(RuntimeError):
    """A committed log entry cannot be applied (corrupt data or out-of-order index).

    This is a fail-stop condition for the node: every replica would hit it at the same
    entry, or this replica's log or backend is damaged.
    """
