"""Errors raised by the storage layer.

::

    RaftKVError
    ├── ConfigError        the data directory cannot be opened (raised by ``Engine.open``)
    └── StorageError       a read or a durable write failed at run time: fail-stop
        └── CorruptionError   a stored record cannot be decoded, or breaks an invariant

A :class:`StorageError` after a node has started means its disk can no longer be trusted;
the node must stop rather than continue (it may have acknowledged nothing it lost, but it
can promise nothing more).
"""

from __future__ import annotations

from raftkv.errors import RaftKVError


class StorageError(RaftKVError):
    """A storage operation failed (I/O error, closed engine, ...)."""


class CorruptionError(StorageError):
    """Stored bytes are not what this version of raftkv wrote."""
