"""The replicated state machine: applies committed Raft entries to MVCC + leases.

Applying is deterministic: the same entries applied to the same state give the same bytes in
the backend and the same results on every replica. Each entry becomes exactly one backend
batch holding its data changes, the new applied index and (for de-duplicated requests) the
client's result, so a crash leaves either all of an entry or none of it.

A request that fails (unknown lease, compacted revision, bad txn, ...) is a *result*: it
changes nothing but the applied index, and its :class:`~raftkv.state.commands.ErrorResult`
is remembered for de-duplication like any other result. :meth:`StateMachine.apply` raises
only :class:`~raftkv.state.errors.ApplyError` (fail-stop) or a backend I/O error.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from raftkv._frozen import fast_init
from raftkv.errors import (
    AuthError,
    CompactedError,
    InvalidRequestError,
    LeaseNotFoundError,
    RaftKVError,
)
from raftkv.state import codec, schema
from raftkv.state.auth import AUTH_COMMANDS, AuthStore
from raftkv.state.backend import Backend, WriteBatch, WriteBuffer
from raftkv.state.commands import (
    AuthResult,
    Command,
    Compact,
    CompactResult,
    DeleteRange,
    ErrorCode,
    ErrorResult,
    Event,
    LeaseCheckpoint,
    LeaseCheckpointResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRenew,
    LeaseRenewResult,
    LeaseRevoke,
    LeaseRevokeResult,
    Put,
    Range,
    RangeResult,
    Request,
    Response,
    Txn,
    TxnResult,
)
from raftkv.state.dedup import DedupTable
from raftkv.state.errors import (
    ApplyError,
    FutureRevisionError,
    LeaseExistsError,
    LeaseTTLTooLargeError,
    StaleRequestError,
)
from raftkv.state.leases import LeaseStatus, LeaseTable
from raftkv.state.mvcc import MVCCStore, WriteTxn
from raftkv.state.txn import MAX_TXN_OPS, execute, execute_txn, is_read_only, validate

_ERROR_CODES: tuple[tuple[type[RaftKVError], ErrorCode], ...] = (
    (StaleRequestError, ErrorCode.STALE_REQUEST),
    (InvalidRequestError, ErrorCode.INVALID_REQUEST),
    (CompactedError, ErrorCode.COMPACTED),
    (FutureRevisionError, ErrorCode.FUTURE_REVISION),
    (LeaseNotFoundError, ErrorCode.LEASE_NOT_FOUND),
    (LeaseExistsError, ErrorCode.LEASE_EXISTS),
    (LeaseTTLTooLargeError, ErrorCode.LEASE_TTL_TOO_LARGE),
    (AuthError, ErrorCode.AUTH),
)
_EXPECTED_ERRORS = tuple(cls for cls, _ in _ERROR_CODES)

_SNAPSHOT_MAGIC = b"RKVSNAP\x01"
_CRC = struct.Struct(">I")


def error_result(exc: RaftKVError) -> ErrorResult:
    """The :class:`ErrorResult` standing for ``exc``."""
    for cls, code in _ERROR_CODES:
        if isinstance(exc, cls):
            compact = exc.compact_revision if isinstance(exc, CompactedError) else 0
            return ErrorResult(code, str(exc), compact)
    raise TypeError(f"no error code for {type(exc).__name__}")


def error_to_exception(result: ErrorResult) -> RaftKVError:
    """The exception an :class:`ErrorResult` stands for, with the same message."""
    if result.code == ErrorCode.COMPACTED:
        return CompactedError(result.message, compact_revision=result.compact_revision)
    for cls, code in _ERROR_CODES:
        if code == result.code:
            return cls(result.message)
    raise TypeError(f"unknown error code {result.code!r}")


@fast_init
@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one entry produced.

    Attributes:
        index: the entry's log index.
        result: the response for the proposer; ``None`` for an empty (no-op) entry or an
            entry that was already applied.
        events: the changes, in order, for watchers; empty for a de-duplicated retry.
    """

    index: int
    result: Response | None
    events: tuple[Event, ...] = ()


def encode_snapshot(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The snapshot format of :meth:`StateMachine.snapshot`: magic, length-prefixed keys and
    values, CRC-32."""
    out = bytearray(_SNAPSHOT_MAGIC)
    for key, value in pairs:
        for part in (key, value):
            out += len(part).to_bytes(4, "big")
            out += part
    out += _CRC.pack(zlib.crc32(out))
    return bytes(out)


class StateMachine:
    """MVCC key space, leases and the de-duplication table over one :class:`Backend`.

    Invariants:
        * ``applied_index`` is the index of the last entry whose effects are in the
          backend (or held by :meth:`applying_batch` until it ends); it is written in
          the same batch as those effects.
        * every in-memory structure (the MVCC index, the lease table, the de-duplication
          table) is a function of the backend contents and is rebuilt by restore.
        * entries are applied in index order with no gaps.
    """

    def __init__(self, backend: Backend, *, max_txn_ops: int = MAX_TXN_OPS) -> None:
        """Open the state in ``backend`` (empty or written by a previous instance).

        Args:
            backend: storage owned by this state machine.
            max_txn_ops: etcd's ``--max-txn-ops``; must be equal on every member.
        """
        self._buffer = WriteBuffer(backend)
        self._backend: Backend = self._buffer
        self._max_txn_ops = max_txn_ops
        self._mvcc = MVCCStore(self._buffer)
        self._leases = LeaseTable(self._buffer)
        self._dedup = DedupTable(self._buffer)
        self.auth = AuthStore(self._buffer)
        """Users, roles, permissions and tokens (read it; only entries change it)."""
        self._applied = 0
        self._reload(mvcc_loaded=True)

    # ------------------------------------------------------------------ queries

    @property
    def applied_index(self) -> int:
        """The index of the last applied entry (0 before the first)."""
        return self._applied

    @property
    def revision(self) -> int:
        """The current store revision."""
        return self._mvcc.revision

    @property
    def compact_revision(self) -> int:
        """The revision of the last compaction (-1 if never compacted)."""
        return self._mvcc.compact_revision

    def range(self, req: Range) -> RangeResult:
        """Serve a read without a log entry (the caller ensures linearizability).

        Raises:
            InvalidRequestError, FutureRevisionError, CompactedError.
        """
        validate(req, self._max_txn_ops)
        return self._mvcc.range(req)

    def events_between(self, start_rev: int, end_rev: int, key: bytes,
                       range_end: bytes) -> list[Event]:
        """Watch history: the changes in ``[start_rev, end_rev)`` to the keys of the range,
        oldest first (see :meth:`MVCCStore.events_between`).

        Raises:
            CompactedError: ``start_rev`` is below the compact revision.
        """
        return self._mvcc.events_between(start_rev, end_rev, key, range_end)

    def with_prev_kv(self, events: Sequence[Event]) -> list[Event]:
        """The events of one applied entry with ``prev_kv`` filled in for puts (an applied
        put's event carries none; see :meth:`MVCCStore.with_prev_kv`)."""
        return self._mvcc.with_prev_kv(events)

    def read_txn(self, txn: Txn) -> TxnResult:
        """Serve a read-only txn without a log entry.

        Raises:
            InvalidRequestError: the txn is malformed or contains a write.
            FutureRevisionError, CompactedError: from one of its ranges.
        """
        validate(txn, self._max_txn_ops)
        if not is_read_only(txn):
            raise InvalidRequestError("raftkv: read_txn needs a read-only txn")
        return execute_txn(self._mvcc.begin(), txn, self._leases.__contains__)

    def lease_ids(self) -> list[int]:
        """``LeaseLeases``: every lease id, ascending."""
        return self._leases.ids()

    def lease_status(self, lease_id: int, now_ms: int) -> LeaseStatus | None:
        """``LeaseTimeToLive`` at ``now_ms``; ``None`` if the lease does not exist."""
        return self._leases.status(lease_id, now_ms)

    def expired_leases(self, now_ms: int) -> list[int]:
        """Leases due at ``now_ms``; the leader proposes a :class:`LeaseRevoke` for each."""
        return self._leases.expired(now_ms)

    # ------------------------------------------------------------------ apply

    def applying_batch(self) -> AbstractContextManager[None]:
        """Within the ``with`` block, the entries applied share one backend write, made
        when the block ends (each entry's effects are still whole, and readable at once).
        Reads of the backend by others must wait until it ends."""
        return self._buffer.hold()

    def apply(self, index: int, data: bytes, decoded: Request | None = None) -> Applied:
        """Apply the committed entry at ``index`` whose payload is ``data``.

        ``data`` is an encoded :class:`Request`, or empty for a no-op entry. An entry at or
        below ``applied_index`` was applied before and is skipped. ``decoded`` is the
        request ``data`` encodes, when the caller holds it (the member that proposed the
        entry): it saves decoding the bytes again. The codec's round trip is exact
        (``decode_request(encode_request(r)) == r``), so the result is the same.

        Raises:
            ApplyError: ``index`` leaves a gap, or ``data`` cannot be decoded.
        """
        if index <= self._applied:
            return Applied(index, None)
        if index != self._applied + 1:
            raise ApplyError(f"entry {index} applied after {self._applied}")
        batch = WriteBatch()
        if not data:
            self._write(batch, index)
            return Applied(index, None)
        request = decoded
        if request is None:
            try:
                request = codec.decode_request(data)
            except codec.DecodeError as exc:
                raise ApplyError(f"entry {index}: {exc}") from exc
        cached = self._dedup.lookup(request)
        if cached is not None:
            self._write(batch, index)
            return Applied(index, cached)
        txn = self._mvcc.begin()
        result = self._execute(txn, request, batch)
        if not isinstance(result, ErrorResult):
            txn.commit(batch)
        if request.client_id != 0:
            self._dedup.record(batch, index, request, result)
        self._write(batch, index)
        if not isinstance(result, ErrorResult):
            txn.finish()
            return Applied(index, result, tuple(txn.events))
        return Applied(index, result)

    def lease_keys(self, lease_id: int) -> Iterable[bytes]:
        """The keys attached to a lease (none if it does not exist)."""
        lease = self._leases.get(lease_id)
        return () if lease is None else tuple(lease.keys)

    def _execute(self, txn: WriteTxn, request: Request, batch: WriteBatch) -> Response:
        """Run ``op``; a deterministic failure leaves memory unchanged and is the result."""
        op = request.op
        try:
            validate(op, self._max_txn_ops)
            self.auth.authorize(request, self.lease_keys)
            if isinstance(op, AUTH_COMMANDS):
                return AuthResult(txn.revision, self.auth.apply(batch, op))  # type: ignore[arg-type]
            result = self._dispatch(txn, op)
            self._leases.observe(txn.lease_changes)
        except _EXPECTED_ERRORS as exc:
            if txn.dirty:
                self._reload()
            return error_result(exc)
        except BaseException:
            if txn.dirty:
                self._reload()
            raise
        return result

    def _dispatch(self, txn: WriteTxn, op: Command) -> Response:
        leases = self._leases
        if isinstance(op, Compact):
            txn.compact(op.revision)
            return CompactResult(txn.revision)
        if isinstance(op, LeaseGrant):
            lease = leases.grant(txn, op)
            return LeaseGrantResult(txn.revision, lease.id, lease.ttl_s)
        if isinstance(op, LeaseRevoke):
            leases.revoke(txn, op.id)
            return LeaseRevokeResult(txn.revision)
        if isinstance(op, LeaseRenew):
            lease = leases.renew(txn, op)
            return LeaseRenewResult(txn.revision, lease.id, lease.ttl_s)
        if isinstance(op, LeaseCheckpoint):
            leases.checkpoint(txn, op)
            return LeaseCheckpointResult(txn.revision)
        assert isinstance(op, Range | Put | DeleteRange | Txn)
        return execute(txn, op, leases.__contains__)

    def _write(self, batch: WriteBatch, index: int) -> None:
        """Add the applied index to ``batch`` and write it (with the dedup records)."""
        batch.put(schema.META_APPLIED, schema.encode_i64(index))
        try:
            self._backend.write(batch)
        except BaseException:
            self._reload()
            raise
        self._applied = index

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """Serialize the whole state (every backend key, applied index included)."""
        return encode_snapshot(self.snapshot_source())

    def snapshot_source(self) -> Iterator[tuple[bytes, bytes]]:
        """Every backend pair as of this call, for :func:`encode_snapshot`. The backend's
        scan reflects the moment it started, so the pairs may be encoded later (the server
        does it on another thread) while entries go on being applied."""
        return self._backend.scan(b"", None)

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot`, atomically.

        Raises:
            ApplyError: ``data`` is not a valid snapshot (the state is left unchanged).
        """
        pairs = _parse_snapshot(data)
        batch = WriteBatch()
        for key, _ in self._backend.scan(b"", None):
            batch.delete(key)
        for key, value in pairs:
            batch.put(key, value)
        try:
            self._backend.write(batch)
        finally:
            self._reload()

    def _reload(self, *, mvcc_loaded: bool = False) -> None:
        """Rebuild every in-memory structure from the backend (the MVCC index only if
        it was not just built: it is the costly part of a restart)."""
        if not mvcc_loaded:
            self._mvcc.reload()
        self._leases.reload(self._mvcc.live_kvs())
        self._dedup.reload()
        self.auth.reload()
        raw = self._backend.get(schema.META_APPLIED)
        self._applied = 0 if raw is None else schema.decode_i64(raw)


def _parse_snapshot(data: bytes) -> list[tuple[bytes, bytes]]:
    """Check and split a snapshot into ascending ``(key, value)`` pairs."""
    body, crc = data[: -_CRC.size], data[-_CRC.size :]
    if not body.startswith(_SNAPSHOT_MAGIC) or _CRC.pack(zlib.crc32(body)) != crc:
        raise ApplyError("not a raftkv state snapshot, or corrupt")
    pairs: list[tuple[bytes, bytes]] = []
    pos = len(_SNAPSHOT_MAGIC)
    while pos < len(body):
        parts = []
        for _ in range(2):
            n = int.from_bytes(body[pos : pos + 4], "big")
            parts.append(body[pos + 4 : pos + 4 + n])
            pos += 4 + n
        if pos > len(body) or (pairs and parts[0] <= pairs[-1][0]):
            raise ApplyError("malformed snapshot")
        pairs.append((parts[0], parts[1]))
    return pairs
