"""The replicated state machine: MVCC key space, transactions, leases, de-duplication.

Pure: no clock, no I/O, no threads, no randomness. Commands arrive as encoded
:class:`~raftkv.state.commands.Request` entries from the Raft log; the leader puts the time
into the commands that need it.

Modules, in import order: :mod:`~raftkv.state.commands` (commands and results),
:mod:`~raftkv.state.codec` (their binary encoding), :mod:`~raftkv.state.backend` (the storage
seam), :mod:`~raftkv.state.revision`, :mod:`~raftkv.state.schema` (key layout),
:mod:`~raftkv.state.mvcc`, :mod:`~raftkv.state.leases`, :mod:`~raftkv.state.txn`,
:mod:`~raftkv.state.machine`.
"""

from raftkv.state.backend import Backend, MemoryBackend, WriteBatch
from raftkv.state.codec import DecodeError, decode_request, encode_request
from raftkv.state.machine import Applied, StateMachine, error_result, error_to_exception
from raftkv.state.txn import MAX_TXN_OPS, validate

__all__ = [
    "MAX_TXN_OPS",
    "Applied",
    "Backend",
    "DecodeError",
    "MemoryBackend",
    "StateMachine",
    "WriteBatch",
    "decode_request",
    "encode_request",
    "error_result",
    "error_to_exception",
    "validate",
]
