"""``raftkv.client``: the Python client of raftkv (and of any etcd v3 server).

Public API (stable)::

    Client, SyncClient, RetryPolicy, TLS              connect
    Compare, Op, Txn                                  transactions
    STM                                               optimistic read-modify-write
    Lease, Lock, Election, Watch                      recipes
    KeyValue, Header, RangeResponse, PutResponse,     typed results
    DeleteResponse, TxnResponse, Event, EventType,
    LeaseGrant, LeaseTimeToLive, Member, Status
    Transport, GrpcTransport                          the transport seam
    User, Role, Permission, AuthStatus                the Auth API's results
    AuthFailedError, InvalidAuthTokenError, ...       typed auth errors (raftkv.client.auth)

Errors are :mod:`raftkv.errors`. See docs/client.md.
"""

from raftkv.client._transport import TLS, GrpcTransport, Transport
from raftkv.client.auth import (
    AuthFailedError,
    AuthNotEnabledError,
    AuthOldRevisionError,
    AuthStatus,
    InvalidAuthRequestError,
    InvalidAuthTokenError,
    Permission,
    PermissionNotGrantedError,
    Role,
    RoleExistsError,
    RoleNotFoundError,
    RoleNotGrantedError,
    RootRoleMissingError,
    User,
    UserEmptyError,
    UserExistsError,
    UserNotFoundError,
)
from raftkv.client.client import Client
from raftkv.client.election import Election
from raftkv.client.lease import Lease
from raftkv.client.lock import Lock
from raftkv.client.retry import RetryPolicy
from raftkv.client.stm import STM
from raftkv.client.sync import SyncClient
from raftkv.client.txn import Compare, Op, Txn
from raftkv.client.types import (
    DeleteResponse,
    Event,
    EventType,
    Header,
    KeyValue,
    LeaseGrant,
    LeaseTimeToLive,
    Member,
    PutResponse,
    RangeResponse,
    Status,
    TxnResponse,
)
from raftkv.client.watch import Watch

__all__ = [
    "STM",
    "TLS",
    "AuthFailedError",
    "AuthNotEnabledError",
    "AuthOldRevisionError",
    "AuthStatus",
    "Client",
    "Compare",
    "DeleteResponse",
    "Election",
    "Event",
    "EventType",
    "GrpcTransport",
    "Header",
    "InvalidAuthRequestError",
    "InvalidAuthTokenError",
    "KeyValue",
    "Lease",
    "LeaseGrant",
    "LeaseTimeToLive",
    "Lock",
    "Member",
    "Op",
    "Permission",
    "PermissionNotGrantedError",
    "PutResponse",
    "RangeResponse",
    "RetryPolicy",
    "Role",
    "RoleExistsError",
    "RoleNotFoundError",
    "RoleNotGrantedError",
    "RootRoleMissingError",
    "Status",
    "SyncClient",
    "Transport",
    "Txn",
    "TxnResponse",
    "User",
    "UserEmptyError",
    "UserExistsError",
    "UserNotFoundError",
    "Watch",
]
