"""The one table mapping raftkv errors to gRPC status codes and etcd's exact messages.

The Go client recognises errors by their message text, so these must match etcd byte for byte.
"""

from __future__ import annotations

import grpc

from raftkv import errors as e
from raftkv.errors import (
    CompactedError,
    InvalidRequestError,
    LeaseNotFoundError,
    NotLeaderError,
    RaftKVError,
    UnavailableError,
)
from raftkv.state.errors import (
    FutureRevisionError,
    LeaseExistsError,
    LeaseTTLTooLargeError,
    StaleRequestError,
)

KEY_NOT_PROVIDED = "etcdserver: key is not provided"
REQUEST_TOO_LARGE = "etcdserver: request is too large"

_TABLE: tuple[tuple[type[RaftKVError], grpc.StatusCode, str | None], ...] = (
    # (error class, status code, message if it differs from the error's own text)
    (CompactedError, grpc.StatusCode.OUT_OF_RANGE,
     "etcdserver: mvcc: required revision has been compacted"),
    (FutureRevisionError, grpc.StatusCode.OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"),
    (LeaseNotFoundError, grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found"),
    (LeaseExistsError, grpc.StatusCode.FAILED_PRECONDITION,
     "etcdserver: lease already exists"),
    (LeaseTTLTooLargeError, grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
    # not the client's fault: a retry whose de-duplication record is gone (raftkv only)
    (StaleRequestError, grpc.StatusCode.FAILED_PRECONDITION, None),
    (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT, None),
    (NotLeaderError, grpc.StatusCode.UNAVAILABLE, "etcdserver: not leader"),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE, None),
)


_C = grpc.StatusCode
AUTH_CODES: dict[str, grpc.StatusCode] = {
    e.AUTH_ROOT_USER_NOT_EXIST: _C.FAILED_PRECONDITION,
    e.AUTH_ROOT_ROLE_NOT_EXIST: _C.FAILED_PRECONDITION,
    e.AUTH_USER_ALREADY_EXIST: _C.FAILED_PRECONDITION,
    e.AUTH_USER_EMPTY: _C.INVALID_ARGUMENT,
    e.AUTH_USER_NOT_FOUND: _C.FAILED_PRECONDITION,
    e.AUTH_ROLE_ALREADY_EXIST: _C.FAILED_PRECONDITION,
    e.AUTH_ROLE_NOT_FOUND: _C.FAILED_PRECONDITION,
    e.AUTH_ROLE_EMPTY: _C.INVALID_ARGUMENT,
    e.AUTH_FAILED: _C.INVALID_ARGUMENT,
    e.AUTH_PERMISSION_NOT_GIVEN: _C.INVALID_ARGUMENT,
    e.AUTH_PERMISSION_DENIED: _C.PERMISSION_DENIED,
    e.AUTH_ROLE_NOT_GRANTED: _C.FAILED_PRECONDITION,
    e.AUTH_PERMISSION_NOT_GRANTED: _C.FAILED_PRECONDITION,
    e.AUTH_NOT_ENABLED: _C.FAILED_PRECONDITION,
    e.AUTH_INVALID_TOKEN: _C.UNAUTHENTICATED,
    e.AUTH_INVALID_MGMT: _C.INVALID_ARGUMENT,
    e.AUTH_OLD_REVISION: _C.INVALID_ARGUMENT,
}
"""etcd's code for each auth message (E:api/v3rpc/rpctypes/error.go); a message not here
(``auth: authentication failed, password was given for no password user``) is Unknown, as
in etcd."""


def to_status(exc: RaftKVError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message etcd would send for ``exc``."""
    if isinstance(exc, e.AuthError):
        return AUTH_CODES.get(str(exc), _C.UNKNOWN), str(exc)
    for cls, code, message in _TABLE:
        if isinstance(exc, cls):
            return code, message if message is not None else str(exc)
    return grpc.StatusCode.UNKNOWN, str(exc)
