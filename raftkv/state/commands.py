"""Commands that travel in Raft log entries, and the results of applying them.

Every type here is a frozen, slotted dataclass of plain values (``int``, ``bool``, ``bytes``,
``str``, enums, tuples and other types of this module), so that :mod:`raftkv.state.codec` can
encode it deterministically. Field names and meanings follow etcd's ``etcdserverpb``
messages; time enters only as a field (``now_ms``) set by the proposing leader.

Key ranges follow etcd's conventions everywhere (Range, DeleteRange, Compare):

* ``range_end == b""``: exactly ``key``;
* ``range_end == b"\\0"``: every key ``>= key`` ("from key"); ``key == range_end == b"\\0"`` is
  every key;
* otherwise the half-open interval ``[key, range_end)`` in byte-wise order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from raftkv._frozen import fast_init

# --------------------------------------------------------------------------- enums


class SortOrder(IntEnum):
    """``RangeRequest.SortOrder``."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    """``RangeRequest.SortTarget``."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(IntEnum):
    """``Compare.CompareResult``: how the stored field must relate to the operand."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(IntEnum):
    """``Compare.CompareTarget``: which field of the stored key is compared."""

    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class EventType(IntEnum):
    """``mvccpb.Event.EventType``."""

    PUT = 0
    DELETE = 1


# --------------------------------------------------------------------------- KV ops


@fast_init
@dataclass(frozen=True, slots=True)
class Range:
    """``RangeRequest``: read ``key`` or a key range, optionally at a past ``revision``.

    ``revision <= 0`` means the current revision. ``limit == 0`` means no limit. A bound of
    0 in ``min_*``/``max_*`` means "no bound". ``serializable`` only matters to the server
    (how the read is ordered); the state machine ignores it.
    """

    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class Put:
    """``PutRequest``: set ``key`` to ``value``, attached to ``lease`` (0 = none)."""

    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteRange:
    """``DeleteRangeRequest``: delete ``key`` or the keys of a range."""

    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Compare:
    """``Compare``: one guard of a :class:`Txn`.

    ``operand`` is ``bytes`` for :attr:`CompareTarget.VALUE` and an ``int`` for every other
    target (etcd's ``target_union``). With ``range_end`` the compare must hold for every
    existing key of the range.
    """

    key: bytes
    target: CompareTarget
    result: CompareResult
    operand: int | bytes
    range_end: bytes = b""


@fast_init
@dataclass(frozen=True, slots=True)
class Txn:
    """``TxnRequest``: if every compare holds run ``success``, else ``failure``.

    Ops may be nested :class:`Txn` values (etcd 3.3+).
    """

    compare: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()


Op = Range | Put | DeleteRange | Txn
"""A ``RequestOp`` of a transaction."""


@fast_init
@dataclass(frozen=True, slots=True)
class Compact:
    """``CompactionRequest``: drop history strictly below ``revision``.

    ``physical`` only matters to the server; compaction here is always physical (done in
    the same backend batch).
    """

    revision: int
    physical: bool = False


# --------------------------------------------------------------------------- leases


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """Create lease ``id`` (non-zero, chosen by the leader) with ``ttl_s`` seconds.

    ``ttl_s`` is the effective TTL: the leader has already raised it to its minimum.
    ``now_ms`` is the leader's clock when proposing; the lease expires at
    ``now_ms + ttl_s * 1000`` unless renewed.
    """

    id: int
    ttl_s: int
    now_ms: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    """Delete lease ``id`` and every key attached to it, in one revision."""

    id: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseRenew:
    """Keep-alive: the lease now expires at ``now_ms + ttl_s * 1000``."""

    id: int
    now_ms: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseCheckpointItem:
    """The remaining time to live of one lease, as the leader measured it."""

    id: int
    remaining_ms: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseCheckpoint:
    """Persist remaining TTLs so that a new leader does not restart them (etcd's
    ``LeaseCheckpointRequest``). Unknown ids are ignored."""

    checkpoints: tuple[LeaseCheckpointItem, ...]
    now_ms: int


# --------------------------------------------------------------------------- auth
# etcd's Auth API (authpb, AuthUserAddRequest ...). Passwords never appear: the member that
# receives one hashes it (bcrypt) before proposing, and a token is recorded by its SHA-256.


@fast_init
@dataclass(frozen=True, slots=True)
class Permission:
    """``authpb.Permission``: ``perm`` is READ (0), WRITE (1) or READWRITE (2)."""

    key: bytes
    range_end: bytes = b""
    perm: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class AuthEnable:
    """``AuthEnableRequest``."""


@fast_init
@dataclass(frozen=True, slots=True)
class AuthDisable:
    """``AuthDisableRequest``."""


@fast_init
@dataclass(frozen=True, slots=True)
class UserAdd:
    """``AuthUserAddRequest``, with the bcrypt hash in place of the password."""

    name: str
    password_hash: bytes = b""
    no_password: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class UserDelete:
    name: str


@fast_init
@dataclass(frozen=True, slots=True)
class UserChangePassword:
    name: str
    password_hash: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class UserGrantRole:
    user: str
    role: str


@fast_init
@dataclass(frozen=True, slots=True)
class UserRevokeRole:
    name: str
    role: str


@fast_init
@dataclass(frozen=True, slots=True)
class RoleAdd:
    name: str


@fast_init
@dataclass(frozen=True, slots=True)
class RoleDelete:
    role: str


@fast_init
@dataclass(frozen=True, slots=True)
class RoleGrantPermission:
    """``AuthRoleGrantPermissionRequest``; ``perm`` None: etcd's "permission not given"."""

    name: str
    perm: Permission | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class RoleRevokePermission:
    role: str
    key: bytes
    range_end: bytes = b""


@fast_init
@dataclass(frozen=True, slots=True)
class TokenIssue:
    """A simple token handed to ``user`` after its password checked out on the proposing
    member: recorded by SHA-256 (never the token), so that every member accepts it once
    it applied this entry. ``now_ms`` is the proposer's clock (the issue time)."""

    user: str
    token_hash: bytes
    now_ms: int


AuthCommand = (
    AuthEnable
    | AuthDisable
    | UserAdd
    | UserDelete
    | UserChangePassword
    | UserGrantRole
    | UserRevokeRole
    | RoleAdd
    | RoleDelete
    | RoleGrantPermission
    | RoleRevokePermission
    | TokenIssue
)


# Auth records, as the backend stores them (see raftkv/state/auth.py).


@fast_init
@dataclass(frozen=True, slots=True)
class UserRecord:
    """``authpb.User``; ``generation`` counts password changes (a token names the
    generation it was issued for)."""

    name: str
    password_hash: bytes = b""
    roles: tuple[str, ...] = ()
    no_password: bool = False
    generation: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class RoleRecord:
    """``authpb.Role``: permissions sorted by ``(key, range_end)``."""

    name: str
    perms: tuple[Permission, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A simple token's user, that user's generation when it was issued, and the time."""

    user: str
    generation: int
    issued_ms: int


Command = (
    Range
    | Put
    | DeleteRange
    | Txn
    | Compact
    | LeaseGrant
    | LeaseRevoke
    | LeaseRenew
    | LeaseCheckpoint
    | AuthEnable
    | AuthDisable
    | UserAdd
    | UserDelete
    | UserChangePassword
    | UserGrantRole
    | UserRevokeRole
    | RoleAdd
    | RoleDelete
    | RoleGrantPermission
    | RoleRevokePermission
    | TokenIssue
)
"""Everything that can be proposed. A :class:`Range` through the log is a linearizable read."""


@fast_init
@dataclass(frozen=True, slots=True)
class Request:
    """The envelope of every proposed command.

    ``(client_id, seq)`` de-duplicates retried proposals (see :mod:`raftkv.state.dedup`):
    for each non-zero ``client_id`` the state machine remembers the results of its recent
    seqs, so a retry of one returns the stored result without applying again; ``ack`` is
    the lowest seq the client still waits for (the results of lower ones may be dropped).
    ``client_id == 0`` opts out (etcd clients, leader-internal proposals such as lease
    revocations). A client numbers its requests with increasing ``seq`` (from 1) and may
    have many in flight. ``nonce`` only tells apart two proposals of the same request (a
    retry) for the proposer; applying ignores it.
    """

    client_id: int
    seq: int
    op: Command
    ack: int = 0
    nonce: int = 0
    user: str = ""
    """Who asks, when auth is on (from its token or certificate); "" for no one."""
    auth_revision: int = 0
    """The auth revision the member saw when it resolved ``user`` (etcd's stamp)."""
    internal: bool = False
    """Proposed by the member itself (lease expiry, checkpoints, issued tokens): not
    subject to permissions."""


# --------------------------------------------------------------------------- results


@fast_init
@dataclass(frozen=True, slots=True)
class KeyValue:
    """``mvccpb.KeyValue``.

    Invariants (for live keys): ``0 < create_revision <= mod_revision`` and
    ``version >= 1``. A tombstone (the ``kv`` of a DELETE event) has only ``key`` and
    ``mod_revision`` set.
    """

    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """``mvccpb.Event``. ``prev_kv`` is the key's value just before the change, when the
    key existed: always filled for deletes and for events read back from history, left
    out of the events of an applied put (which reads no previous value) until
    :meth:`StateMachine.with_prev_kv` fills it for a watcher that asked for it."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class RangeResult:
    """``RangeResponse``. ``revision`` is the store's current revision (the header), even
    for a read at a past revision. ``count`` counts the matching keys before ``limit`` and
    before the min/max filters (etcd 3.4)."""

    revision: int
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class PutResult:
    """``PutResponse``. ``prev_kv`` is set only if requested and the key existed."""

    revision: int
    prev_kv: KeyValue | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteResult:
    """``DeleteRangeResponse``."""

    revision: int
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class TxnResult:
    """``TxnResponse``: one result per op of the executed branch, in order."""

    revision: int
    succeeded: bool
    responses: tuple[OpResult, ...] = ()


OpResult = RangeResult | PutResult | DeleteResult | TxnResult
"""A ``ResponseOp``."""


@fast_init
@dataclass(frozen=True, slots=True)
class CompactResult:
    """``CompactionResponse``."""

    revision: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseGrantResult:
    """``LeaseGrantResponse``."""

    revision: int
    id: int
    ttl_s: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseRevokeResult:
    """``LeaseRevokeResponse``."""

    revision: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseRenewResult:
    """``LeaseKeepAliveResponse``: ``ttl_s`` is the granted TTL after renewal."""

    revision: int
    id: int
    ttl_s: int


@fast_init
@dataclass(frozen=True, slots=True)
class LeaseCheckpointResult:
    """The (empty) result of a :class:`LeaseCheckpoint`."""

    revision: int


class ErrorCode(IntEnum):
    """Which exception an :class:`ErrorResult` stands for."""

    INVALID_REQUEST = 0
    COMPACTED = 1
    FUTURE_REVISION = 2
    LEASE_NOT_FOUND = 3
    LEASE_EXISTS = 4
    LEASE_TTL_TOO_LARGE = 5
    STALE_REQUEST = 6
    AUTH = 7


@fast_init
@dataclass(frozen=True, slots=True)
class AuthResult:
    """The result of an auth command: the store revision and the new auth revision."""

    revision: int
    auth_revision: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class ErrorResult:
    """A command that failed deterministically: nothing changed, the error is the result.

    Stored in the de-duplication table like any other result, so a retry sees the same
    error. Convert with :func:`raftkv.state.machine.error_to_exception`.
    """

    code: ErrorCode
    message: str
    compact_revision: int = 0


Response = (
    RangeResult
    | PutResult
    | DeleteResult
    | TxnResult
    | CompactResult
    | LeaseGrantResult
    | LeaseRevokeResult
    | LeaseRenewResult
    | LeaseCheckpointResult
    | AuthResult
    | ErrorResult
)
"""The result of applying any :data:`Command`."""
