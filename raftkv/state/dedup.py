"""The request de-duplication table: a retried write is applied once.

A client names each write ``(client_id, seq)`` and tells, with each one, the lowest seq it
still waits for (``ack``: every lower seq has been answered). The table keeps, per client:

* the results of its applied requests with ``seq >= floor``, so a retry of any of them --
  however many are in flight at once -- gets the first result without applying again;
* ``floor``: seqs below it are acknowledged (or evicted); a request below it that is not in
  the table is answered :class:`~raftkv.state.errors.StaleRequestError` and not applied
  (a delayed duplicate of a request whose record is gone). So is a request of an unknown
  client whose ``ack`` is above 1: it had answered requests, so its records were evicted
  and this may be a retry of an applied one. The client then starts a new session (a new
  client id, seqs from 1); a request that was a first attempt is simply re-sent there.

It stays bounded deterministically, by log order and never by time: a client's records
below its ``ack`` are dropped when it sends a higher one; at most :data:`MAX_PER_CLIENT`
records per client are kept (the lowest seq goes first and raises the floor); and at most
:data:`MAX_CLIENTS` clients are tracked (the one whose last request is oldest in the log
goes first, with its records). Every replica applies the same entries and so evicts the
same records; the table lives in the backend, so it survives restarts and travels in
snapshots::

    b"d" + ordered(client_id)                 -> floor:i64 last_index:i64
    b"d" + ordered(client_id) + ordered(seq)  -> index:i64 codec(result)

``client_id == 0`` opts out (etcd clients, leader-internal proposals).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from raftkv.state import codec, schema
from raftkv.state.backend import Backend, WriteBatch
from raftkv.state.commands import ErrorCode, ErrorResult, Request, Response
from raftkv.state.errors import STALE_PREFIX

MAX_PER_CLIENT = 1024
"""Records kept per client (its requests in flight at once, in practice)."""
MAX_CLIENTS = 4096
"""Clients tracked at once."""

_I64 = struct.Struct(">q")
_PAIR = struct.Struct(">qq")


_NO_FLOOR = -(1 << 63)


@dataclass(slots=True)
class _Client:
    floor: int = _NO_FLOOR
    last_index: int = 0
    records: dict[int, int] = field(default_factory=dict)
    """seq -> log index of the applied request."""


def _key(client_id: int, seq: int | None) -> bytes:
    """The record of ``seq``, or (``None``) the client's floor record."""
    key = schema.DEDUP_PREFIX + schema.ordered_id(client_id)
    return key if seq is None else key + schema.ordered_id(seq)


class DedupTable:
    """See the module docstring. Invariant: the in-memory view equals the backend records;
    clients are kept in order of ``last_index`` (insertion order of the dict)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._clients: dict[int, _Client] = {}
        self.reload()

    def __len__(self) -> int:
        """The number of result records."""
        return sum(len(c.records) for c in self._clients.values())

    def lookup(self, request: Request) -> Response | None:
        """The stored result of a retried request, a stale error, or ``None`` if new."""
        c = self._clients.get(request.client_id) if request.client_id else None
        if c is None:
            if request.client_id and request.ack > 1:
                # it had answered requests, yet no records: evicted (or its earlier writes
                # never reached the log); a retry here might apply twice
                return ErrorResult(ErrorCode.STALE_REQUEST,
                                   f"{STALE_PREFIX}client {request.client_id:x} is unknown "
                                   f"(its records were evicted); request {request.seq} "
                                   "not applied: start a new session")
            return None
        if request.seq in c.records:
            raw = self._backend.get(_key(request.client_id, request.seq))
            if raw is None:
                raise KeyError(f"dedup record {request.client_id:x}/{request.seq} is missing")
            return codec.decode_response(raw[_I64.size:])
        if request.seq < c.floor:
            return ErrorResult(ErrorCode.STALE_REQUEST,
                               f"{STALE_PREFIX}request {request.seq} of client "
                               f"{request.client_id:x} is below its acknowledged floor "
                               f"{c.floor}; not applied")
        return None

    def record(self, batch: WriteBatch, index: int, request: Request, result: Response) -> None:
        """Remember ``result`` of the new request applied at ``index`` (and apply its ack).

        Changes memory at once: if the batch is not written the caller must :meth:`reload`.
        """
        cid, seq = request.client_id, request.seq
        c = self._clients.pop(cid, None) or _Client()
        self._clients[cid] = c  # most recently active last
        c.last_index = index
        c.records[seq] = index
        batch.put(_key(cid, seq), _I64.pack(index) + codec.encode_response(result))
        if request.ack != 0 and request.ack > c.floor:
            c.floor = request.ack
        for s in [s for s in c.records if s < c.floor and s != seq]:
            self._drop(batch, cid, c, s)
        while len(c.records) > MAX_PER_CLIENT:
            lowest = min(c.records)
            self._drop(batch, cid, c, lowest)
            c.floor = max(c.floor, lowest + 1)
        batch.put(_key(cid, None), _PAIR.pack(c.floor, c.last_index))
        while len(self._clients) > MAX_CLIENTS:
            old_id = next(iter(self._clients))
            old = self._clients.pop(old_id)
            for s in list(old.records):
                self._drop(batch, old_id, old, s)
            batch.delete(_key(old_id, None))

    @staticmethod
    def _drop(batch: WriteBatch, cid: int, c: _Client, seq: int) -> None:
        del c.records[seq]
        batch.delete(_key(cid, seq))

    def reload(self) -> None:
        """Rebuild the in-memory view from the backend."""
        clients: dict[int, _Client] = {}
        end = schema.next_prefix(schema.DEDUP_PREFIX)
        for key, value in self._backend.scan(schema.DEDUP_PREFIX, end):
            cid = schema.decode_ordered_id(key[1:9])
            if len(key) == 9 and len(value) == _PAIR.size:
                c = clients.setdefault(cid, _Client())
                c.floor, c.last_index = _PAIR.unpack(value)
            elif len(key) == 17:
                seq = schema.decode_ordered_id(key[9:])
                c = clients.setdefault(cid, _Client())
                c.records[seq] = _I64.unpack(value[: _I64.size])[0]
        ordered = sorted(clients.items(), key=lambda item: item[1].last_index)
        self._clients = dict(ordered)
