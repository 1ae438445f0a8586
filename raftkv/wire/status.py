"""The one table mapping raftkv errors to gRPC status codes and etcd's exact messages.

The Go client recognises errors by their message text, so these must match etcd byte for byte.
"""

from __future__ import annotations

import grpc

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


def to_status(exc: RaftKVError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message etcd would send for ``exc``."""
    for cls, code, message in _TABLE:
        if isinstance(exc, cls):
            return code, message if message is not None else str(exc)
    return grpc.StatusCode.UNKNOWN, str(exc)
