"""A deliberately naive reference model of the KV store: one dict per revision.

It knows nothing about indexes, backends or encodings; every revision's whole state is kept
as a dict. It covers flat transactions (no nested txns), plain ranges (key, range_end,
revision, limit), compaction and lease grant/revoke.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    KeyValue,
    Op,
    OpResult,
    Put,
    PutResult,
    Range,
    RangeResult,
    Response,
    Txn,
    TxnResult,
)

State = dict[bytes, KeyValue]


class ModelError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


def in_range(k: bytes, key: bytes, range_end: bytes) -> bool:
    if range_end == b"":
        return k == key
    if range_end == b"\0":
        return k >= key
    return key <= k < range_end


@dataclass
class Model:
    revision: int = 1
    compact: int = -1
    history: dict[int, State] = field(default_factory=lambda: {1: {}})
    leases: set[int] = field(default_factory=set)

    @property
    def state(self) -> State:
        return self.history[self.revision]

    def commit(self, new: State) -> None:
        self.revision += 1
        self.history[self.revision] = new

    # -------------------------------------------------------------- reads

    def range(
        self, req: Range, state: State | None = None, current: int | None = None
    ) -> RangeResult:
        current = self.revision if current is None else current
        if req.revision > current:
            raise ModelError(ErrorCode.FUTURE_REVISION)
        at = current if req.revision <= 0 else req.revision
        if at < self.compact:
            raise ModelError(ErrorCode.COMPACTED)
        if state is None or req.revision > 0:
            state = self.history[at]
        kvs = [state[k] for k in sorted(state) if in_range(k, req.key, req.range_end)]
        count = len(kvs)
        more = 0 < req.limit < count
        if more:
            kvs = kvs[: req.limit]
        return RangeResult(current, tuple(kvs), more, count)

    # -------------------------------------------------------------- writes

    def put(self, state: State, rev: int, req: Put) -> PutResult:
        prev = state.get(req.key)
        state[req.key] = KeyValue(
            req.key,
            prev.create_revision if prev else rev,
            rev,
            prev.version + 1 if prev else 1,
            req.value,
            req.lease,
        )
        return PutResult(rev, prev if req.prev_kv else None)

    def delete(self, state: State, req: DeleteRange) -> list[KeyValue]:
        gone = [state[k] for k in sorted(state) if in_range(k, req.key, req.range_end)]
        for kv in gone:
            del state[kv.key]
        return gone

    def apply(self, op: object) -> Response:
        try:
            return self._apply(op)
        except ModelError as exc:
            return ErrorResult(exc.code, "")

    def _apply(self, op: object) -> Response:
        if isinstance(op, Range):
            return self.range(op)
        if isinstance(op, Put):
            if op.lease and op.lease not in self.leases:
                raise ModelError(ErrorCode.LEASE_NOT_FOUND)
            new = dict(self.state)
            result = self.put(new, self.revision + 1, op)
            self.commit(new)
            return result
        if isinstance(op, DeleteRange):
            new = dict(self.state)
            gone = self.delete(new, op)
            if gone:
                self.commit(new)
            return DeleteResult(self.revision, len(gone), tuple(gone) if op.prev_kv else ())
        if isinstance(op, Txn):
            return self.txn(op)
        raise TypeError(op)

    def compact_to(self, revision: int) -> None:
        if revision <= self.compact:
            raise ModelError(ErrorCode.COMPACTED)
        if revision > self.revision:
            raise ModelError(ErrorCode.FUTURE_REVISION)
        self.compact = revision

    def grant(self, lease_id: int) -> None:
        if lease_id in self.leases:
            raise ModelError(ErrorCode.LEASE_EXISTS)
        self.leases.add(lease_id)

    def revoke(self, lease_id: int) -> None:
        if lease_id not in self.leases:
            raise ModelError(ErrorCode.LEASE_NOT_FOUND)
        self.leases.discard(lease_id)
        new = {k: kv for k, kv in self.state.items() if kv.lease != lease_id}
        if len(new) != len(self.state):
            self.commit(new)

    # -------------------------------------------------------------- txn (flat)

    def compare(self, cmp: Compare) -> bool:
        kvs = [kv for k, kv in self.state.items() if in_range(k, cmp.key, cmp.range_end)]
        if not kvs:
            if cmp.target == CompareTarget.VALUE:
                return False
            kvs = [KeyValue(cmp.key)]
        return all(_holds(cmp, kv) for kv in kvs)

    def txn(self, txn: Txn) -> TxnResult:
        self.check_duplicates(txn.success)
        self.check_duplicates(txn.failure)
        ok = all(self.compare(c) for c in txn.compare)
        ops = txn.success if ok else txn.failure
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self.leases:
                raise ModelError(ErrorCode.LEASE_NOT_FOUND)
        work = dict(self.state)
        changed = False
        results: list[OpResult] = []
        for op in ops:
            current = self.revision + 1 if changed else self.revision
            if isinstance(op, Range):
                results.append(self.range(op, work, current))
            elif isinstance(op, Put):
                results.append(self.put(work, self.revision + 1, op))
                changed = True
            elif isinstance(op, DeleteRange):
                gone = self.delete(work, op)
                changed = changed or bool(gone)
                rev = self.revision + 1 if changed else self.revision
                results.append(DeleteResult(rev, len(gone), tuple(gone) if op.prev_kv else ()))
        if changed:
            self.commit(work)
        return TxnResult(self.revision, ok, tuple(results))

    @staticmethod
    def check_duplicates(ops: tuple[Op, ...]) -> None:
        puts = [op.key for op in ops if isinstance(op, Put)]
        dels = [op for op in ops if isinstance(op, DeleteRange)]
        if len(set(puts)) != len(puts):
            raise ModelError(ErrorCode.INVALID_REQUEST)
        for key in puts:
            for d in dels:
                end = d.range_end if d.range_end else d.key + b"\0"
                if d.key <= key < end:  # a "\0" end is empty here, as in etcd
                    raise ModelError(ErrorCode.INVALID_REQUEST)


def _holds(cmp: Compare, kv: KeyValue) -> bool:
    if cmp.target == CompareTarget.VALUE:
        have: int | bytes = kv.value
    else:
        have = {
            CompareTarget.VERSION: kv.version,
            CompareTarget.CREATE: kv.create_revision,
            CompareTarget.MOD: kv.mod_revision,
            CompareTarget.LEASE: kv.lease,
        }[cmp.target]
    want = cmp.operand
    if cmp.result == CompareResult.EQUAL:
        return have == want
    if cmp.result == CompareResult.NOT_EQUAL:
        return have != want
    if cmp.result == CompareResult.GREATER:
        return have > want  # type: ignore[operator]
    return have < want  # type: ignore[operator]
