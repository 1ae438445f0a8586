"""The transaction builder: immutable, no operator overloading, reads like the txn it is::

    result = await (client.txn()
                    .if_(Compare.value("cfg").equal(b"v1"), Compare.version("lock").equal(0))
                    .then(Op.put("cfg", b"v2"), Op.get("cfg"))
                    .otherwise(Op.get("cfg"))
                    .commit())
    if result.succeeded: ...

Every method returns a new :class:`Txn`; :meth:`Txn.commit` sends it. A compare that fails
is a result (``succeeded`` is ``False``), not an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar, overload

from raftkv.client.types import KeyLike, TxnResponse, prefix_end, to_bytes
from raftkv.wire.pb.etcdserverpb import rpc_pb2

_RESULTS = {"=": rpc_pb2.Compare.EQUAL, "==": rpc_pb2.Compare.EQUAL,
            "!=": rpc_pb2.Compare.NOT_EQUAL, ">": rpc_pb2.Compare.GREATER,
            "<": rpc_pb2.Compare.LESS}


def _key_range(key: KeyLike, prefix: bool, range_end: KeyLike | None) -> tuple[bytes, bytes]:
    """``(key, range_end)`` of a request. As in etcd's clientv3 ``WithPrefix``, the empty
    prefix means every key: ``(b"\\0", b"\\0")`` (an empty key is refused by the server)."""
    k = to_bytes(key)
    if prefix and range_end is not None:
        raise ValueError("give prefix=True or range_end, not both")
    if prefix:
        return (b"\0", b"\0") if not k else (k, prefix_end(k))
    return k, b"" if range_end is None else to_bytes(range_end, "range_end")


@dataclass(frozen=True, slots=True)
class Compare:
    """One guard of a txn. Build with the class methods, then a relation::

        Compare.value("k").equal(b"x")        Compare.version("k").greater(2)
        Compare.create_revision("k").equal(0) Compare.mod_revision("k").less(100)
        Compare.lease("k").equal(lease_id)    Compare.value("k", "!=", b"x")

    With ``prefix=True`` (or ``range_end``) the compare must hold for every key of the range.
    A compare on a missing key sees version, create and mod revision and lease 0, and fails
    for ``value``.
    """

    key: bytes
    target: int
    result: int
    operand: int | bytes
    range_end: bytes = b""

    @overload
    @staticmethod
    def value(key: KeyLike, op: None = None, operand: None = None, *, prefix: bool = False,
              range_end: KeyLike | None = None) -> _Target: ...

    @overload
    @staticmethod
    def value(key: KeyLike, op: str, operand: KeyLike, *, prefix: bool = False,
              range_end: KeyLike | None = None) -> Compare: ...

    @staticmethod
    def value(key: KeyLike, op: str | None = None, operand: KeyLike | None = None, *,
              prefix: bool = False, range_end: KeyLike | None = None) -> Compare | _Target:
        """Compare the value; ``Compare.value(k).equal(v)`` or ``Compare.value(k, "=", v)``."""
        t = _Target(*_key_range(key, prefix, range_end), rpc_pb2.Compare.VALUE)
        return t if op is None else t.relation(op, to_bytes(_need(operand), "value"))

    @staticmethod
    def version(key: KeyLike, *, prefix: bool = False,
                range_end: KeyLike | None = None) -> _Target:
        """Compare the version (0 for a missing key)."""
        return _Target(*_key_range(key, prefix, range_end), rpc_pb2.Compare.VERSION)

    @staticmethod
    def create_revision(key: KeyLike, *, prefix: bool = False,
                        range_end: KeyLike | None = None) -> _Target:
        """Compare the create revision (0 for a missing key; a lock's fencing token)."""
        return _Target(*_key_range(key, prefix, range_end), rpc_pb2.Compare.CREATE)

    @staticmethod
    def mod_revision(key: KeyLike, *, prefix: bool = False,
                     range_end: KeyLike | None = None) -> _Target:
        """Compare the last modification revision (0 for a missing key)."""
        return _Target(*_key_range(key, prefix, range_end), rpc_pb2.Compare.MOD)

    @staticmethod
    def lease(key: KeyLike, *, prefix: bool = False,
              range_end: KeyLike | None = None) -> _Target:
        """Compare the attached lease id (0: none)."""
        return _Target(*_key_range(key, prefix, range_end), rpc_pb2.Compare.LEASE)

    @staticmethod
    def exists(key: KeyLike) -> Compare:
        """The key exists (its create revision is above 0)."""
        return Compare.create_revision(key).greater(0)

    @staticmethod
    def missing(key: KeyLike) -> Compare:
        """The key does not exist (its version is 0)."""
        return Compare.version(key).equal(0)

    def to_pb(self) -> rpc_pb2.Compare:
        c = rpc_pb2.Compare(key=self.key, range_end=self.range_end, target=self.target,  # type: ignore[arg-type]
                            result=self.result)  # type: ignore[arg-type]
        if self.target == rpc_pb2.Compare.VALUE:
            assert isinstance(self.operand, bytes)
            c.value = self.operand
        elif self.target == rpc_pb2.Compare.VERSION:
            c.version = int(self.operand)
        elif self.target == rpc_pb2.Compare.CREATE:
            c.create_revision = int(self.operand)
        elif self.target == rpc_pb2.Compare.MOD:
            c.mod_revision = int(self.operand)
        else:
            c.lease = int(self.operand)
        return c


def _need(operand: KeyLike | None) -> KeyLike:
    if operand is None:
        raise ValueError("Compare.value(key, op, operand): the operand is missing")
    return operand


@dataclass(frozen=True, slots=True)
class _Target:
    """A compare target waiting for its relation (see :class:`Compare`)."""

    key: bytes
    range_end: bytes
    target: int

    def _make(self, result: int, operand: int | KeyLike) -> Compare:
        if self.target == rpc_pb2.Compare.VALUE:
            value: int | bytes = to_bytes(operand, "value") if not isinstance(
                operand, int) else _bad_operand(operand)
        elif isinstance(operand, int) and not isinstance(operand, bool):
            value = operand
        else:
            raise TypeError(f"compare operand must be an int, got {operand!r}")
        return Compare(self.key, self.target, result, value, self.range_end)

    def relation(self, op: str, operand: int | KeyLike) -> Compare:
        """``op`` is one of ``=``, ``==``, ``!=``, ``>``, ``<``."""
        if op not in _RESULTS:
            raise ValueError(f"compare relation {op!r}: use one of = != > <")
        return self._make(_RESULTS[op], operand)

    def equal(self, operand: int | KeyLike) -> Compare:
        return self._make(rpc_pb2.Compare.EQUAL, operand)

    def not_equal(self, operand: int | KeyLike) -> Compare:
        return self._make(rpc_pb2.Compare.NOT_EQUAL, operand)

    def greater(self, operand: int | KeyLike) -> Compare:
        return self._make(rpc_pb2.Compare.GREATER, operand)

    def less(self, operand: int | KeyLike) -> Compare:
        return self._make(rpc_pb2.Compare.LESS, operand)


def _bad_operand(operand: int) -> bytes:
    raise TypeError(f"a value compare needs bytes or str, got {operand!r}")


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a txn branch: :meth:`get`, :meth:`put`, :meth:`delete`, :meth:`txn`."""

    request: rpc_pb2.RequestOp
    is_write: bool

    @staticmethod
    def get(key: KeyLike, *, prefix: bool = False, range_end: KeyLike | None = None,
            limit: int = 0, revision: int = 0, keys_only: bool = False,
            count_only: bool = False, serializable: bool = False) -> Op:
        k, end = _key_range(key, prefix, range_end)
        r = rpc_pb2.RangeRequest(key=k, range_end=end,
                                 limit=limit, revision=revision, keys_only=keys_only,
                                 count_only=count_only, serializable=serializable)
        return Op(rpc_pb2.RequestOp(request_range=r), False)

    @staticmethod
    def put(key: KeyLike, value: KeyLike, *, lease: int = 0, prev_kv: bool = False) -> Op:
        r = rpc_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value, "value"),
                               lease=lease, prev_kv=prev_kv)
        return Op(rpc_pb2.RequestOp(request_put=r), True)

    @staticmethod
    def delete(key: KeyLike, *, prefix: bool = False, range_end: KeyLike | None = None,
               prev_kv: bool = False) -> Op:
        k, end = _key_range(key, prefix, range_end)
        r = rpc_pb2.DeleteRangeRequest(key=k, range_end=end,
                                       prev_kv=prev_kv)
        return Op(rpc_pb2.RequestOp(request_delete_range=r), True)

    @staticmethod
    def txn(txn: Txn) -> Op:
        """A nested transaction (etcd 3.3+)."""
        return Op(rpc_pb2.RequestOp(request_txn=txn.to_pb()), not txn.read_only)


Committer = Callable[["Txn"], Awaitable[TxnResponse]]


@dataclass(frozen=True, slots=True)
class Txn:
    """An immutable transaction: compares, ops if they all hold, ops otherwise."""

    _sync_proxy: ClassVar[bool] = True

    compares: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()
    committer: Committer | None = field(default=None, compare=False, repr=False)

    def if_(self, *compares: Compare) -> Txn:
        """Add compares (all must hold)."""
        for c in compares:
            if not isinstance(c, Compare):
                raise TypeError(f"if_() takes Compare values, got {c!r}")
        return replace(self, compares=self.compares + compares)

    def then(self, *ops: Op) -> Txn:
        """Add ops to run if every compare holds."""
        return replace(self, success=self.success + _ops(ops))

    def otherwise(self, *ops: Op) -> Txn:
        """Add ops to run if some compare fails."""
        return replace(self, failure=self.failure + _ops(ops))

    else_ = otherwise

    @property
    def read_only(self) -> bool:
        return not any(op.is_write for op in (*self.success, *self.failure))

    def to_pb(self) -> rpc_pb2.TxnRequest:
        return rpc_pb2.TxnRequest(compare=[c.to_pb() for c in self.compares],
                                  success=[op.request for op in self.success],
                                  failure=[op.request for op in self.failure])

    async def commit(self) -> TxnResponse:
        """Send the transaction (see :meth:`raftkv.client.Client.txn`)."""
        if self.committer is None:
            raise TypeError("this Txn has no client: build it with client.txn()")
        return await self.committer(self)


def _ops(ops: tuple[Op, ...]) -> tuple[Op, ...]:
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"then()/otherwise() take Op values (Op.put, Op.get, ...), "
                            f"got {op!r}")
    return ops
