"""The public exception tree of raftkv.

Every error raftkv raises on purpose derives from :class:`RaftKVError`::

    RaftKVError
    ├── ConfigError               a configuration value is invalid (names the value and the fix)
    ├── InvalidRequestError       a request is malformed (empty key, too many txn ops, ...)
    ├── UnavailableError          no leader / no quorum / member down / stopping: retried
    │   │                         automatically where safe, raised when the deadline passes
    │   ├── NotLeaderError        this member is not the leader (carries a leader hint)
    │   ├── DeadlineExceededError the call's deadline passed
    │   └── OutcomeUnknownError   a write failed in a way that leaves unknown whether it was
    │                             applied (only against servers that do not de-duplicate)
    ├── CompactedError            the requested revision has been compacted
    ├── FutureRevisionError       the requested revision is above the current revision
    ├── LeaseNotFoundError        the lease does not exist (expired or revoked)
    ├── LeaseExistsError          a lease with the requested id already exists
    ├── LeaseTTLTooLargeError     the requested TTL is above etcd's maximum
    ├── LeaseLostError            a lease this client kept alive has expired or was revoked
    ├── LockLostError             a held lock's key disappeared (lease lost or key deleted)
    ├── NoLeaderElectedError      an election has no leader (etcd "election: no leader")
    ├── NotElectedError           this campaign is not the leader ("election: not leader")
    ├── ConflictError             an STM function kept conflicting until it ran out of retries
    ├── NoSpaceError              the backend quota is exhausted ("database space exceeded")
    ├── PermissionDeniedError     authentication / authorisation refused the request
    │   └── AuthError             an auth request or check failed (etcd's exact message)
    ├── ClusterError              a membership request was refused (member not found, ...)
    ├── WatchCanceledError        the server cancelled a watch for another reason
    └── ClosedError               the client was closed

A transaction whose compare fails is a *result*, not an error. The pure Raft core has its
own internal sentinels in :mod:`raftkv.raft.errors`; the server maps them onto this tree and
the client maps gRPC statuses back onto it (:mod:`raftkv.client._errors`). Errors raised by
the client carry the gRPC status name in :attr:`RaftKVError.grpc_code` (``None`` otherwise).
"""

from __future__ import annotations


class RaftKVError(Exception):
    """Base class of every error raftkv raises on purpose."""

    grpc_code: str | None = None
    """The gRPC status code name (``"UNAVAILABLE"``) of the status this error came from."""


class ConfigError(RaftKVError, ValueError):
    """A configuration value is invalid. The message names the value and the fix."""


class InvalidRequestError(RaftKVError, ValueError):
    """A client request is malformed."""


class UnavailableError(RaftKVError):
    """The cluster cannot serve the request now (no leader, no quorum, stopping)."""


class NotLeaderError(UnavailableError):
    """This member is not the leader.

    Attributes:
        leader_hint: the id of the member believed to be leader, or 0 when unknown.
    """

    def __init__(self, message: str = "not leader", leader_hint: int = 0) -> None:
        super().__init__(message)
        self.leader_hint = leader_hint


class DeadlineExceededError(UnavailableError, TimeoutError):
    """The call did not complete before its deadline (retries included)."""


class OutcomeUnknownError(UnavailableError):
    """A write failed after it may have reached the server, and the server does not
    de-duplicate retried requests (etcd), so it was not retried: it may or may not have
    been applied. Read the keys to find out."""


class CompactedError(RaftKVError):
    """The requested revision has been compacted away."""

    def __init__(self, message: str = "mvcc: required revision has been compacted",
                 compact_revision: int = 0) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class FutureRevisionError(RaftKVError):
    """The requested revision is greater than the store's current revision."""

    def __init__(self, message: str = "mvcc: required revision is a future revision") -> None:
        super().__init__(message)


class LeaseNotFoundError(RaftKVError):
    """The lease does not exist (it expired or was revoked)."""


class LeaseExistsError(RaftKVError):
    """A lease with the requested id already exists."""

    def __init__(self, message: str = "etcdserver: lease already exists") -> None:
        super().__init__(message)


class LeaseTTLTooLargeError(RaftKVError):
    """The requested lease TTL exceeds etcd's maximum (9,000,000,000 s)."""

    def __init__(self, message: str = "etcdserver: too large lease TTL") -> None:
        super().__init__(message)


class LeaseLostError(RaftKVError):
    """A lease this client kept alive expired or was revoked: every key attached to it is
    gone, and so is any lock or leadership held through it."""


class LockLostError(RaftKVError):
    """A lock this client held has been lost (its key is gone or was re-created)."""


class NoLeaderElectedError(RaftKVError):
    """The election has no leader (etcd ``election: no leader``)."""


class NotElectedError(RaftKVError):
    """The campaign is not (or no longer) the election's leader (``election: not leader``)."""


class ConflictError(RaftKVError):
    """An STM function conflicted with concurrent writers on every attempt."""


class NoSpaceError(RaftKVError):
    """The backend quota is exhausted (``etcdserver: mvcc: database space exceeded``)."""


class PermissionDeniedError(RaftKVError):
    """Authentication or authorisation refused the request."""


class AuthError(PermissionDeniedError):
    """An auth request or an auth check failed. The message is etcd's, byte for byte (one of
    the ``AUTH_*`` constants below); the gRPC code goes with it (:mod:`raftkv.wire.status`)."""


AUTH_ROOT_USER_NOT_EXIST = "etcdserver: root user does not exist"
AUTH_ROOT_ROLE_NOT_EXIST = "etcdserver: root user does not have root role"
AUTH_USER_ALREADY_EXIST = "etcdserver: user name already exists"
AUTH_USER_EMPTY = "etcdserver: user name is empty"
AUTH_USER_NOT_FOUND = "etcdserver: user name not found"
AUTH_ROLE_ALREADY_EXIST = "etcdserver: role name already exists"
AUTH_ROLE_NOT_FOUND = "etcdserver: role name not found"
AUTH_ROLE_EMPTY = "etcdserver: role name is empty"
AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password"
AUTH_PERMISSION_NOT_GIVEN = "etcdserver: permission not given"
AUTH_PERMISSION_DENIED = "etcdserver: permission denied"
AUTH_ROLE_NOT_GRANTED = "etcdserver: role is not granted to the user"
AUTH_PERMISSION_NOT_GRANTED = "etcdserver: permission is not granted to the role"
AUTH_NOT_ENABLED = "etcdserver: authentication is not enabled"
AUTH_INVALID_TOKEN = "etcdserver: invalid auth token"
AUTH_INVALID_MGMT = "etcdserver: invalid auth management"
AUTH_OLD_REVISION = "etcdserver: revision of auth store is old"
AUTH_NO_PASSWORD_USER = "auth: authentication failed, password was given for no password user"


class ClusterError(RaftKVError):
    """A membership request was refused (member not found, peer URL exists, ...)."""


class WatchCanceledError(RaftKVError):
    """The server cancelled a watch for a reason other than compaction."""


class ClosedError(RaftKVError):
    """The client (or the object it produced) was closed."""


STALE_REQUEST_PREFIX = "raftkv: stale request: "
"""How a server's message starts when it refused a de-duplicated write whose record is gone
(an earlier attempt may have been applied); the client starts a new session or reports
:class:`OutcomeUnknownError`."""
