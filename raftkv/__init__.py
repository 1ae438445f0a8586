"""raftkv: a strongly consistent, replicated coordination service.

Raft over LevelDB, applying committed entries to a key-value / lease / lock state machine,
with a client API that is wire-compatible with the etcd v3 gRPC API.

Public API: the client (:class:`Client`, :class:`SyncClient`, :class:`Lock`,
:class:`Lease`, :class:`Election`, ... see :mod:`raftkv.client`) and the exception tree
(:mod:`raftkv.errors`). The client names are imported lazily, so importing the pure layers
(``raftkv.raft``, ``raftkv.state``) does not load gRPC.
"""

from typing import TYPE_CHECKING, Any

from raftkv.errors import (
    ClosedError,
    CompactedError,
    ConfigError,
    ConflictError,
    DeadlineExceededError,
    InvalidRequestError,
    LeaseLostError,
    LeaseNotFoundError,
    LockLostError,
    NotElectedError,
    NotLeaderError,
    OutcomeUnknownError,
    RaftKVError,
    UnavailableError,
)

if TYPE_CHECKING:
    from raftkv.client import (
        Client,
        Compare,
        Election,
        Lease,
        Lock,
        Op,
        RetryPolicy,
        SyncClient,
        Txn,
        Watch,
    )

_CLIENT_NAMES = ("Client", "Compare", "Election", "Lease", "Lock", "Op", "RetryPolicy",
                 "SyncClient", "Txn", "Watch")

__all__ = [
    "Client",
    "ClosedError",
    "CompactedError",
    "Compare",
    "ConfigError",
    "ConflictError",
    "DeadlineExceededError",
    "Election",
    "InvalidRequestError",
    "Lease",
    "LeaseLostError",
    "LeaseNotFoundError",
    "Lock",
    "LockLostError",
    "NotElectedError",
    "NotLeaderError",
    "Op",
    "OutcomeUnknownError",
    "RaftKVError",
    "RetryPolicy",
    "SyncClient",
    "Txn",
    "UnavailableError",
    "Watch",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from raftkv import client

        return getattr(client, name)
    raise AttributeError(f"module 'raftkv' has no attribute {name!r}")
