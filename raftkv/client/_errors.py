"""The one place where gRPC failures become :mod:`raftkv.errors` exceptions.

etcd's clients recognise errors by status code *and* message text (``rpctypes``); so does
this table. The messages are etcd 3.4's (and raftkv's, which copies them byte for byte, see
:mod:`raftkv.wire.status`).
"""

from __future__ import annotations

import grpc

from raftkv import errors as e
from raftkv.client import auth as a

_BY_MESSAGE: tuple[tuple[str, type[e.RaftKVError]], ...] = (
    # (message prefix without "etcdserver: ", class): first match wins
    ("mvcc: required revision has been compacted", e.CompactedError),
    ("mvcc: required revision is a future revision", e.FutureRevisionError),
    ("mvcc: database space exceeded", e.NoSpaceError),
    ("requested lease not found", e.LeaseNotFoundError),
    ("lease already exists", e.LeaseExistsError),
    ("too large lease TTL", e.LeaseTTLTooLargeError),
    ("not leader", e.NotLeaderError),
    ("no leader", e.UnavailableError),
    ("leader changed", e.UnavailableError),
    ("request timed out", e.UnavailableError),
    ("server stopped", e.UnavailableError),
    ("too many requests", e.UnavailableError),
    ("timeout", e.UnavailableError),
    ("member not found", e.ClusterError),
    ("member ID already exist", e.ClusterError),
    ("Peer URLs already exists", e.ClusterError),
    ("re-configuration failed", e.ClusterError),
    ("can only promote a learner member", e.ClusterError),
    ("can only promote a learner member which is in sync with leader", e.ClusterError),
    ("too many learner members in cluster", e.ClusterError),
    ("permission denied", e.PermissionDeniedError),
    # etcd's auth messages (raftkv.errors.AUTH_*): raftkv.client.auth's AuthError subclasses
    ("user name is empty", a.UserEmptyError),
    ("user name already exists", a.UserExistsError),
    ("user name not found", a.UserNotFoundError),
    ("role name already exists", a.RoleExistsError),
    ("role name not found", a.RoleNotFoundError),
    ("role name is empty", a.InvalidAuthRequestError),
    ("authentication failed", a.AuthFailedError),
    ("invalid auth token", a.InvalidAuthTokenError),
    ("revision of auth store is old", a.AuthOldRevisionError),
    ("authentication is not enabled", a.AuthNotEnabledError),
    ("root user does not", a.RootRoleMissingError),
    ("role is not granted to the user", a.RoleNotGrantedError),
    ("permission is not granted to the role", a.PermissionNotGrantedError),
    ("permission not given", a.InvalidAuthRequestError),
    ("invalid auth management", a.InvalidAuthRequestError),
    ("user name", e.AuthError),
    ("role name", e.AuthError),
)
_RECIPES: tuple[tuple[str, type[e.RaftKVError]], ...] = (
    ("election: not leader", e.NotElectedError),
    ("election: no leader", e.NoLeaderElectedError),
    ("mutex: session is expired", e.LockLostError),
    ("auth: authentication failed", a.AuthFailedError),  # a password for a no-password user
)
_BY_CODE: dict[grpc.StatusCode, type[e.RaftKVError]] = {
    grpc.StatusCode.UNAVAILABLE: e.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: e.DeadlineExceededError,
    grpc.StatusCode.INVALID_ARGUMENT: e.InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: e.InvalidRequestError,
    grpc.StatusCode.PERMISSION_DENIED: e.PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: e.PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: e.NoSpaceError,
    grpc.StatusCode.CANCELLED: e.UnavailableError,
}
CORE_INTERNAL = "Internal error from Core"
"""What grpc's C core reports when a stream ends in a transport race (seen when a server
refuses a bidirectional stream before reading its first request, as raftkv's auth check
does): not the server's answer, so transient; the retried call gets the real status."""
_CONNECTION_FAILURES = ("failed to connect", "connection refused", "connect failed",
                        "name resolution", "dns resolution failed")


def from_rpc_error(exc: grpc.RpcError) -> e.RaftKVError:
    """The raftkv exception for a failed call (the gRPC error is its ``__cause__``)."""
    code, details = _status(exc)
    cls = classify(code, details)
    err = cls(details) if cls is not e.CompactedError else e.CompactedError(details)
    err.grpc_code = code.name
    err.__cause__ = exc
    return err


def classify(code: grpc.StatusCode, details: str) -> type[e.RaftKVError]:
    """The exception class for a status; message text first (as etcd's rpctypes)."""
    for text, cls in _RECIPES:
        if details.startswith(text):
            return cls
    if details.startswith("etcdserver: "):
        rest = details[len("etcdserver: "):]
        for text, cls in _BY_MESSAGE:
            if rest.startswith(text):
                return cls
    elif details.startswith("mvcc: "):
        for text, cls in _BY_MESSAGE[:3]:
            if details.startswith(text):
                return cls
    if code == grpc.StatusCode.NOT_FOUND and "lease" in details:
        return e.LeaseNotFoundError
    if code == grpc.StatusCode.INTERNAL and details == CORE_INTERNAL:
        return e.UnavailableError
    return _BY_CODE.get(code, e.RaftKVError)


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code_fn = getattr(exc, "code", None)
    details_fn = getattr(exc, "details", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details = details_fn() if callable(details_fn) else str(exc)
    return code, details or ""


def never_sent(exc: BaseException) -> bool:
    """True if the call failed before the request could reach any server (no connection):
    retrying it cannot apply a write twice."""
    if not isinstance(exc, e.RaftKVError) or exc.grpc_code != "UNAVAILABLE":
        return False
    text = str(exc).lower()
    return not text.startswith("etcdserver") and any(t in text for t in _CONNECTION_FAILURES)
