"""KV requests: validation, then compare evaluation, then one branch, at one revision.

This follows etcd 3.4 (``v3rpc/key.go`` for validation, ``etcdserver/apply.go`` for
execution):

1. :func:`validate` checks the shape of a request before it is proposed (the server calls
   it) and again when it is applied (deterministic, so every replica agrees): empty keys,
   ``ignore_*`` flags, the op limit, overlapping writes.
2. For a :class:`Txn`, every compare on the executed path (nested txns included) is
   evaluated against the state *before* the txn, then the ops on that path are checked
   (unknown leases and ``ignore_*`` on missing keys first, then range revisions), so a
   failing txn changes nothing.
3. The ops of the chosen branches run in order in one :class:`~raftkv.state.mvcc.WriteTxn`;
   later ops see earlier writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from raftkv.errors import CompactedError, InvalidRequestError
from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    KeyValue,
    Op,
    OpResult,
    Put,
    PutResult,
    Range,
    Txn,
    TxnResult,
)
from raftkv.state.errors import (
    MSG_COMPACTED,
    MSG_DUPLICATE_KEY,
    MSG_EMPTY_KEY,
    MSG_KEY_NOT_FOUND,
    MSG_LEASE_PROVIDED,
    MSG_TOO_MANY_OPS,
    MSG_VALUE_PROVIDED,
    FutureRevisionError,
)
from raftkv.state.leases import NO_LEASE, lease_not_found
from raftkv.state.mvcc import WriteTxn

MAX_TXN_OPS = 128
"""etcd's default ``--max-txn-ops``."""

LeaseExists = Callable[[int], bool]

# ------------------------------------------------------------------ validation


def validate(op: object, max_txn_ops: int = MAX_TXN_OPS) -> None:
    """Check a KV request the way etcd's gRPC layer does before proposing it.

    Non-KV commands pass unchecked.

    Raises:
        InvalidRequestError: with etcd's exact message.
    """
    if isinstance(op, Txn):
        _check_txn(op, max_txn_ops)
        # checked after the shape, to avoid quadratic work on oversized requests (etcd)
        _check_intervals(op.success)
        _check_intervals(op.failure)
    elif isinstance(op, Range | Put | DeleteRange):
        _check_op(op, max_txn_ops)


def _check_op(op: Op, max_txn_ops: int) -> None:
    if isinstance(op, Txn):
        _check_txn(op, max_txn_ops)
        return
    if not op.key:
        raise InvalidRequestError(MSG_EMPTY_KEY)
    if isinstance(op, Put):
        if op.ignore_value and op.value:
            raise InvalidRequestError(MSG_VALUE_PROVIDED)
        if op.ignore_lease and op.lease != NO_LEASE:
            raise InvalidRequestError(MSG_LEASE_PROVIDED)


def _check_txn(txn: Txn, max_txn_ops: int) -> None:
    """etcd ``checkTxnRequest``: the op limit is the max of the three lists, and a nested
    txn gets what is left of the budget."""
    opc = max(len(txn.compare), len(txn.success), len(txn.failure))
    if opc > max_txn_ops:
        raise InvalidRequestError(MSG_TOO_MANY_OPS)
    for cmp in txn.compare:
        if not cmp.key:
            raise InvalidRequestError(MSG_EMPTY_KEY)
    for op in (*txn.success, *txn.failure):
        _check_op(op, max_txn_ops - opc)


@dataclass(slots=True)
class _Writes:
    """Keys put and intervals deleted by a list of ops (etcd ``checkIntervals``).

    A delete interval is half-open ``[start, end)``; a single-key delete is
    ``[key, key + b"\\0")``. As in etcd, a delete with ``range_end == b"\\0"`` ("from key")
    is treated as an empty interval here.
    """

    puts: set[bytes] = field(default_factory=set)
    dels: list[tuple[bytes, bytes]] = field(default_factory=list)

    def deleted(self, key: bytes) -> bool:
        return any(start <= key < end for start, end in self.dels)


def _check_intervals(ops: tuple[Op, ...]) -> _Writes:
    """Reject a put to a key that another put or a delete of the same branch touches."""
    w = _Writes()
    for op in ops:
        if isinstance(op, DeleteRange):
            end = op.range_end if op.range_end else op.key + b"\0"
            w.dels.append((op.key, end))
    for op in ops:
        if not isinstance(op, Txn):
            continue
        then, other = _check_intervals(op.success), _check_intervals(op.failure)
        for key in then.puts:
            if key in w.puts or w.deleted(key):
                raise InvalidRequestError(MSG_DUPLICATE_KEY)
            w.puts.add(key)
        for key in other.puts:
            # a key put by both branches of one nested txn is fine: only one runs
            if (key in w.puts and key not in then.puts) or w.deleted(key):
                raise InvalidRequestError(MSG_DUPLICATE_KEY)
            w.puts.add(key)
        w.dels.extend(then.dels)
        w.dels.extend(other.dels)
    for op in ops:
        if isinstance(op, Put):
            if op.key in w.puts or w.deleted(op.key):
                raise InvalidRequestError(MSG_DUPLICATE_KEY)
            w.puts.add(op.key)
    return w


def is_read_only(txn: Txn) -> bool:
    """True iff neither branch (nested txns included) contains a Put or DeleteRange."""
    for op in (*txn.success, *txn.failure):
        if isinstance(op, Put | DeleteRange):
            return False
        if isinstance(op, Txn) and not is_read_only(op):
            return False
    return True


# ------------------------------------------------------------------ compares


def _compare_kv(cmp: Compare, kv: KeyValue) -> bool:
    """etcd ``compareKV``; an operand of the wrong type compares as 0 / ``b""``."""
    operand = cmp.operand
    if cmp.target == CompareTarget.VALUE:
        want_bytes = operand if isinstance(operand, bytes) else b""
        diff = (kv.value > want_bytes) - (kv.value < want_bytes)
    else:
        want = operand if isinstance(operand, int) else 0
        have = {
            CompareTarget.VERSION: kv.version,
            CompareTarget.CREATE: kv.create_revision,
            CompareTarget.MOD: kv.mod_revision,
            CompareTarget.LEASE: kv.lease,
        }[cmp.target]
        diff = (have > want) - (have < want)
    return {
        CompareResult.EQUAL: diff == 0,
        CompareResult.NOT_EQUAL: diff != 0,
        CompareResult.GREATER: diff > 0,
        CompareResult.LESS: diff < 0,
    }[cmp.result]


def _compare(txn: WriteTxn, cmp: Compare) -> bool:
    """etcd ``applyCompare``: every key of the range must match; a missing key compares
    as an all-zero KeyValue, except that a VALUE compare on a missing key is false."""
    kvs = txn.range(Range(cmp.key, cmp.range_end)).kvs
    if not kvs:
        return cmp.target != CompareTarget.VALUE and _compare_kv(cmp, KeyValue(cmp.key))
    return all(_compare_kv(cmp, kv) for kv in kvs)


@dataclass(slots=True)
class _Plan:
    """Which branch of a txn runs, and the plans of the nested txns of that branch."""

    succeeded: bool
    nested: list[_Plan] = field(default_factory=list)


def _branch(txn: Txn, plan: _Plan) -> tuple[Op, ...]:
    return txn.success if plan.succeeded else txn.failure


def _plan(wtxn: WriteTxn, txn: Txn) -> _Plan:
    """etcd ``compareToPath``: all compares are evaluated before anything is written."""
    plan = _Plan(all(_compare(wtxn, cmp) for cmp in txn.compare))
    plan.nested = [_plan(wtxn, op) for op in _branch(txn, plan) if isinstance(op, Txn)]
    return plan


def _path(txn: Txn, plan: _Plan) -> Iterator[Op]:
    """The non-txn ops that will run, in execution order."""
    nested = iter(plan.nested)
    for op in _branch(txn, plan):
        if isinstance(op, Txn):
            yield from _path(op, next(nested))
        else:
            yield op


# ------------------------------------------------------------------ execution


def _check_put(wtxn: WriteTxn, put: Put, lease_exists: LeaseExists) -> None:
    if (put.ignore_value or put.ignore_lease) and wtxn.get(put.key) is None:
        raise InvalidRequestError(MSG_KEY_NOT_FOUND)
    if put.lease != NO_LEASE and not lease_exists(put.lease):
        raise lease_not_found()


def _check_range(wtxn: WriteTxn, rng: Range) -> None:
    """etcd ``checkRange`` (note: a negative revision counts as compacted here)."""
    if rng.revision == 0:
        return
    if rng.revision > wtxn.revision:
        raise FutureRevisionError()
    if rng.revision < wtxn.compact_revision:
        raise CompactedError(MSG_COMPACTED, compact_revision=wtxn.compact_revision)


def _put(wtxn: WriteTxn, put: Put) -> PutResult:
    """etcd ``applierV3backend.Put`` inside a write txn (leases already checked)."""
    prev = None
    if put.ignore_value or put.ignore_lease or put.prev_kv:
        prev = wtxn.get(put.key)
    if prev is None and (put.ignore_value or put.ignore_lease):
        raise InvalidRequestError(MSG_KEY_NOT_FOUND)
    value = prev.value if put.ignore_value and prev is not None else put.value
    lease = prev.lease if put.ignore_lease and prev is not None else put.lease
    wtxn.put(put.key, value, lease)
    return PutResult(wtxn.revision, prev if put.prev_kv else None)


def _delete(wtxn: WriteTxn, req: DeleteRange) -> DeleteResult:
    prevs = wtxn.delete_range(req.key, req.range_end)
    return DeleteResult(wtxn.revision, len(prevs), tuple(prevs) if req.prev_kv else ())


def _run(wtxn: WriteTxn, txn: Txn, plan: _Plan) -> TxnResult:
    responses: list[OpResult] = []
    nested = iter(plan.nested)
    for op in _branch(txn, plan):
        if isinstance(op, Txn):
            responses.append(_run(wtxn, op, next(nested)))
        elif isinstance(op, Put):
            responses.append(_put(wtxn, op))
        elif isinstance(op, DeleteRange):
            responses.append(_delete(wtxn, op))
        else:
            responses.append(wtxn.range(op))
    return TxnResult(wtxn.revision, plan.succeeded, tuple(responses))


def execute_txn(wtxn: WriteTxn, txn: Txn, lease_exists: LeaseExists) -> TxnResult:
    """Evaluate the compares, check the chosen path, then run it (etcd ``Txn``).

    Raises:
        LeaseNotFoundError, InvalidRequestError, FutureRevisionError, CompactedError:
            before anything is written.
    """
    plan = _plan(wtxn, txn)
    path = list(_path(txn, plan))
    if not is_read_only(txn):
        for op in path:
            if isinstance(op, Put):
                _check_put(wtxn, op, lease_exists)
    for op in path:
        if isinstance(op, Range):
            _check_range(wtxn, op)
    return _run(wtxn, txn, plan)


def execute(wtxn: WriteTxn, op: Op, lease_exists: LeaseExists) -> OpResult:
    """Run one KV request (already validated) in ``wtxn``.

    Raises:
        LeaseNotFoundError, InvalidRequestError, FutureRevisionError, CompactedError.
    """
    if isinstance(op, Txn):
        return execute_txn(wtxn, op, lease_exists)
    if isinstance(op, Put):
        if op.lease != NO_LEASE and not lease_exists(op.lease):
            raise lease_not_found()
        return _put(wtxn, op)
    if isinstance(op, DeleteRange):
        return _delete(wtxn, op)
    return wtxn.range(op)
