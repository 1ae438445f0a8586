"""The public exception tree of raftkv.

Every error raftkv raises on purpose derives from :class:`RaftKVError`::

    RaftKVError
    ├── ConfigError            a configuration value is invalid (names the value and the fix)
    ├── InvalidRequestError    a request is malformed (empty key, too many txn ops, ...)
    ├── NotLeaderError         this member is not the leader (carries a leader hint)
    ├── UnavailableError       no leader / no quorum / shutting down; safe to retry reads
    ├── CompactedError         the requested revision has been compacted
    ├── LeaseNotFoundError     the lease does not exist (expired or revoked)
    └── LockLostError          a held lock's key disappeared (lease lost or deleted)

A transaction whose compare fails is a *result*, not an error. The pure Raft core has its
own internal sentinels in :mod:`raftkv.raft.errors`; the server maps them onto this tree.
"""

from __future__ import annotations


class RaftKVError(Exception):
    """Base class of every error raftkv raises on purpose."""


class ConfigError(RaftKVError, ValueError):
    """A configuration value is invalid. The message names the value and the fix."""


class InvalidRequestError(RaftKVError, ValueError):
    """A client request is malformed."""


class NotLeaderError(RaftKVError):
    """This member is not the leader.

    Attributes:
        leader_hint: the id of the member believed to be leader, or 0 when unknown.
    """

    def __init__(self, message: str = "not leader", leader_hint: int = 0) -> None:
        super().__init__(message)
        self.leader_hint = leader_hint


class UnavailableError(RaftKVError):
    """The cluster cannot serve the request now (no leader, no quorum, stopping)."""


class CompactedError(RaftKVError):
    """The requested revision has been compacted away."""

    def __init__(self, message: str = "mvcc: required revision has been compacted",
                 compact_revision: int = 0) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class LeaseNotFoundError(RaftKVError):
    """The lease does not exist (it expired or was revoked)."""


class LockLostError(RaftKVError):
    """A lock this client held has been lost."""
