"""Durable storage of a member in LevelDB (through plyvel, imported only by ``engine``).

Public API::

    Store.open(path)            -> Store(engine, log: DurableLogStorage, backend: LevelDBBackend)
    Engine.open(path)           the typed LevelDB wrapper (namespaces, atomic batches, views)
    DurableLogStorage(engine)   raftkv.raft.storage.LogStorage + save/create_snapshot/compact
    LevelDBBackend(engine)      raftkv.state.backend.Backend + snapshot_iter/install
    StorageError, CorruptionError; ConfigError (from raftkv.errors) when opening fails
"""

from __future__ import annotations

from raftkv.storage.engine import Batch, Engine, Namespace, View
from raftkv.storage.errors import CorruptionError, StorageError
from raftkv.storage.raft_store import DurableLogStorage
from raftkv.storage.state_backend import LevelDBBackend
from raftkv.storage.store import Identity, Store

__all__ = [
    "Batch",
    "CorruptionError",
    "DurableLogStorage",
    "Engine",
    "Identity",
    "LevelDBBackend",
    "Namespace",
    "StorageError",
    "Store",
    "View",
]
